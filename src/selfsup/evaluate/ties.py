"""Ties never count as hits: the one rule every classification protocol scores by."""

from __future__ import annotations

from torch import Tensor


def label_hits(scores: Tensor, labels: Tensor, k: int = 1) -> Tensor:
    """(N,) bool: whether each row's true class is among its top `k` classes with ties counted
    against it, i.e. fewer than k classes score at least as high as the true one (itself
    included). An argmax or topk would break a tie towards the lowest class index, so an
    encoder with one output for everything would score every query of class 0 as correct."""
    labels = labels.to(scores.device).long().view(-1, 1)
    true = scores.gather(1, labels)
    return (scores >= true).sum(dim=1).cpu() <= k
