"""Sentence-embedding losses: supervised SimCSE's InfoNCE with hard negatives, and contrastive
tension's binary logistic loss between two models."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supervised_info_nce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
) -> torch.Tensor:
    """Supervised SimCSE's loss (Gao et al. 2021, "SimCSE", eq. 5): InfoNCE on cosine
    similarity with in-batch negatives and, optionally, one hard negative per anchor.

    Anchors h_i (N, D), positives h_i^+ (N, D) (an entailment of the anchor), hard negatives
    h_i^- (N, D) (a contradiction of it) or None. With s(a, b) = cos(a, b) / temperature:

        loss = mean_i -log( exp s(h_i, h_i^+)
                            / sum_j [exp s(h_i, h_j^+) + exp s(h_i, h_j^-)] )

    Every anchor sees every positive and every hard negative of the batch in its denominator
    (the hard negatives of other anchors are in-batch negatives too). Without `negatives` this
    is InfoNCE over (anchor, positive) pairs.
    """
    if anchors.dim() != 2 or anchors.shape != positives.shape:
        raise ValueError(
            "supervised_info_nce expects anchors and positives of one (N, D) shape, got "
            f"{tuple(anchors.shape)} and {tuple(positives.shape)}"
        )
    if negatives is not None and negatives.shape != anchors.shape:
        raise ValueError(
            f"hard negatives must be shaped like the anchors {tuple(anchors.shape)}, got "
            f"{tuple(negatives.shape)}"
        )
    keys = positives if negatives is None else torch.cat([positives, negatives])
    # fp32 even under autocast: logits up to 1/temperature = 20 need the mantissa.
    with torch.autocast(anchors.device.type, enabled=False):
        logits = F.normalize(anchors.float(), dim=1) @ F.normalize(keys.float(), dim=1).T
        logits = logits / temperature
    targets = torch.arange(anchors.shape[0], device=anchors.device)
    return F.cross_entropy(logits, targets)


def contrastive_tension(
    first: torch.Tensor, second: torch.Tensor, negatives_per_positive: float = 7.0
) -> torch.Tensor:
    """Contrastive tension (Carlsson et al. 2021, "Semantic re-tuning with contrastive
    tension", eq. 1): a binary logistic loss on dot products of two independent models.

    Row i of `first` (N, D) is model 1's embedding of sentence i, row i of `second` model 2's
    of the same sentence. Identical sentences are positives (label 1), different sentences
    negatives (label 0), scored by the plain dot product:

        l_pos = mean_i  -log sigmoid( f1(s_i) . f2(s_i) )
        l_neg = mean_{i != j} -log sigmoid( -f1(s_i) . f2(s_j) )
        loss  = (l_pos + K * l_neg) / (1 + K)

    The paper's batches hold 1 identical pair and K = 7 random pairs; here every off-diagonal
    pair of the batch is a negative, weighted so that positives and negatives count 1 : K in
    expectation, as in the paper, without sampling.
    """
    if first.dim() != 2 or first.shape != second.shape:
        raise ValueError(
            "contrastive_tension expects two (N, D) tensors of one shape, got "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    n = first.shape[0]
    if n < 2:
        raise ValueError("contrastive_tension needs at least 2 sentences (negatives)")
    with torch.autocast(first.device.type, enabled=False):
        logits = first.float() @ second.float().T
    diagonal = torch.eye(n, dtype=torch.bool, device=first.device)
    positive = -F.logsigmoid(logits[diagonal]).mean()
    negative = -F.logsigmoid(-logits[~diagonal]).mean()
    k = float(negatives_per_positive)
    return (positive + k * negative) / (1.0 + k)
