"""Multi-step prediction in latent space, as C-SWM's evaluation (Kipf et al. 2020, tkipf/c-swm's
`eval.py`): Hits@1 and MRR after 1, 5 and 10 steps.

For each held-out episode with at least k transitions, its first observation is encoded and
rolled out k steps along the episode's actions by the model's transition function (the
modality's `extra_features` puts the rollouts in `Features.extra["rollout_K"]`, the encoded
observations k steps on in `extra["target_K"]`, one row per episode). As in the reference,
each target's row of squared Euclidean distances to every episode's prediction is ranked, and
the rank of its own episode's prediction is scored: hit@1 (rank 1) and the mean reciprocal
rank over every rank (no cut).

Ties count against the episode: its rank is the number of predictions at a distance at most
its own (itself included). The reference sorts ties in favour of the true pair (a stable sort
with the true distance placed first), so a model that maps everything to one point would score
100 % there; here it scores 0.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.retrieval import require_finite

ROLLOUT = re.compile(r"^rollout_(\d+)$")
CHUNK = 1024  # targets ranked at once: a (chunk, episodes) distance matrix


def target_ranks(predicted: Tensor, targets: Tensor) -> Tensor:
    """(E,) 1-based rank of each target's own prediction among all E predictions by squared
    distance, ties against it."""
    predicted, targets = predicted.double(), targets.double()
    ranks = []
    for start in range(0, len(targets), CHUNK):
        rows = targets[start : start + CHUNK]
        dist = torch.cdist(rows, predicted, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
        own = dist[torch.arange(len(rows)), torch.arange(start, start + len(rows))]
        ranks.append((dist <= own[:, None]).sum(1))
    return torch.cat(ranks)


def transition_ranking_protocol(features: Features) -> dict[str, float]:
    """transition_stepK_hit@1 and transition_stepK_mrr for every horizon K in the features."""
    steps = sorted(int(m.group(1)) for key in features.extra if (m := ROLLOUT.match(key)))
    out: dict[str, float] = {}
    for k in steps:
        predicted, targets = features.extra[f"rollout_{k}"], features.extra[f"target_{k}"]
        if predicted.shape != targets.shape:
            raise SelfsupError(
                f"{k}-step rollouts {tuple(predicted.shape)} and targets "
                f"{tuple(targets.shape)} differ in shape"
            )
        if len(targets) < 2:
            continue
        require_finite(predicted, targets)
        ranks = target_ranks(predicted.flatten(1).cpu(), targets.flatten(1).cpu()).double()
        out[f"transition_step{k}_hit@1"] = float((ranks == 1).double().mean())
        out[f"transition_step{k}_mrr"] = float((1 / ranks).mean())
    if not out:
        raise SelfsupError(
            "transition_ranking found no horizon with at least 2 held-out episodes to rank: the "
            "test episodes must start at step 0 and have at least 1 transition each"
        )
    return out
