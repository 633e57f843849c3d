"""Losses of the sentence-order tasks: ALBERT's sentence-order prediction and Quick-Thoughts'
choice of a sentence's neighbour among in-batch candidates. Pure functions on embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sentence_order_loss(
    logits: torch.Tensor, swapped: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """ALBERT's sentence-order prediction (Lan et al. 2020, sec. 3.2; HF AlbertSOPHead): the
    two-way cross-entropy of `logits` (N, 2) against `swapped` (N,) bool, class 0 the pair in
    its document's order and 1 swapped; also the accuracy (a tensor, no host sync)."""
    if logits.dim() != 2 or logits.shape[1] != 2 or swapped.shape != (logits.shape[0],):
        raise ValueError(
            f"sentence_order_loss expects logits (N, 2) and swapped (N,), got "
            f"{tuple(logits.shape)} and {tuple(swapped.shape)}"
        )
    labels = swapped.long()
    with torch.autocast(logits.device.type, enabled=False):
        logits = logits.float()
        loss = F.cross_entropy(logits, labels)
    accuracy = (logits.argmax(1) == labels).float().mean()
    return loss, accuracy


def quick_thoughts(
    queries: torch.Tensor,
    keys: torch.Tensor,
    temperature: float = 1.0,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Quick-Thoughts' classification of the context (Logeswaran & Lee 2018, eq. 1-2; the
    reference S2V code's `build_loss`), for a pool of 2N sentences made of N consecutive pairs:
    rows 0..N-1 the first sentences, rows N..2N-1 their next sentences. Row i's context is
    row p(i) = (i + N) mod 2N (the next sentence of a first one, the previous of a second):

        s_ij = f(x_i) . g(x_j) / temperature
        loss = mean_i [ -s_ip(i) + log sum_{j != i} exp(s_ij) ]

    `queries` are f(x) (2N, D), `keys` g(x) (2N, D); raw dot products, as the reference (it has
    no temperature: 1). The candidate x_i itself never counts (the reference zeroes that score,
    here it is left out); `exclude` (2N, 2N) bool removes more candidates (duplicates of row i
    or of its context); it must not name p(i).
    """
    if queries.shape != keys.shape or queries.dim() != 2 or queries.shape[0] % 2:
        raise ValueError(
            f"quick_thoughts expects two (2N, D) tensors of equal shape, got "
            f"{tuple(queries.shape)} and {tuple(keys.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    m = len(queries)
    idx = torch.arange(m, device=queries.device)
    targets = (idx + m // 2) % m
    with torch.autocast(queries.device.type, enabled=False):
        logits = queries.float() @ keys.float().T / temperature
        drop = idx[:, None] == idx[None, :]
        if exclude is not None:
            drop = drop | exclude
        return F.cross_entropy(logits.masked_fill(drop, float("-inf")), targets)


def quick_thoughts_accuracy(
    queries: torch.Tensor, keys: torch.Tensor, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Per row (2N,): 1.0 where the best-scored candidate is the row's context p(i)."""
    m = len(queries)
    idx = torch.arange(m, device=queries.device)
    scores = queries.float() @ keys.float().T
    drop = idx[:, None] == idx[None, :]
    if exclude is not None:
        drop = drop | exclude
    best = scores.masked_fill(drop, float("-inf")).argmax(1)
    return (best == (idx + m // 2) % m).float()
