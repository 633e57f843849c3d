"""The counting loss (Noroozi, Pirsiavash & Favaro, ICCV 2017, "Representation learning by
learning to count", equation 4).

A counting vector phi (non-negative: "how many of each visual primitive") of the downsampled
image D(x) must equal the sum of the counting vectors of its four tiles T_j(x), and must differ
from that sum for another image y by at least a margin (the contrastive term keeps phi from
collapsing to zero, which satisfies the first term for every image):

    l(x, y) = |phi(D x) - sum_j phi(T_j x)|^2 + max(0, M - |phi(D y) - sum_j phi(T_j x)|^2)

averaged over the batch; M = 10 in the paper and in the authors' reference code
(clvrai/Representation-Learning-by-Learning-to-Count, model.py `build_loss`).
"""

from __future__ import annotations

import torch
from torch import Tensor

PAPER_MARGIN = 10.0


def counting_terms(
    whole: Tensor, tiles: Tensor, other: Tensor, margin: float = PAPER_MARGIN
) -> tuple[Tensor, Tensor]:
    """The two terms of the counting loss, each averaged over the batch.

    whole: phi(D x) (B, K); tiles: phi(T_j x) (B, n, K) for the n tiles of x; other: phi(D y)
    (B, K) for another image y per row. Returns (pair, unpair): the mean of |phi(D x) - sum|^2
    and of max(0, M - |phi(D y) - sum|^2).
    """
    if tiles.dim() != 3 or whole.shape != other.shape or tiles[:, 0].shape != whole.shape:
        raise ValueError(
            f"whole {tuple(whole.shape)} and other {tuple(other.shape)} must be (B, K) and tiles "
            f"{tuple(tiles.shape)} (B, n, K)"
        )
    if not margin > 0:
        raise ValueError(f"the margin must be > 0, got {margin}")
    total = tiles.sum(dim=1)
    pair = (whole - total).pow(2).sum(dim=1)
    unpair = torch.clamp(margin - (other - total).pow(2).sum(dim=1), min=0)
    return pair.mean(), unpair.mean()


def counting_loss(
    whole: Tensor, tiles: Tensor, other: Tensor, margin: float = PAPER_MARGIN
) -> Tensor:
    """The counting loss: the sum of `counting_terms` (see the module's docstring)."""
    pair, unpair = counting_terms(whole, tiles, other, margin)
    return pair + unpair
