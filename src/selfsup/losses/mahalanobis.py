"""The learned Mahalanobis metric's own loss: NCA's softmax over squared distances, with
augmented views as the classes (the triplet and contrastive losses it can also use live in
`losses.metric` and `losses.contrastive`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nca_pairs(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Neighbourhood components analysis (Goldberger, Roweis, Hinton & Salakhutdinov 2004) with
    augmented views as the classes: over the pool u of 2N embeddings u = L x (views of sample i
    at rows i and i + N), each row picks a neighbour j != i with probability
    p_ij = softmax_j(-||u_i - u_j||^2), and the loss is the mean of -log p_i,p(i), p(i) the other
    view of the same sample. On the unnormalised embeddings: the distance is the Mahalanobis
    distance (x_i - x_j)^T L^T L (x_i - x_j), and L's scale is the softmax's temperature."""
    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        raise ValueError(
            f"nca_pairs expects two (N, D) tensors of equal shape with N >= 2, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    with torch.autocast(z1.device.type, enabled=False):
        u = torch.cat([z1, z2]).float()
        m = len(u)
        sq = u.pow(2).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2 * u @ u.T).clamp_min(0)
        idx = torch.arange(m, device=u.device)
        logits = (-d2).masked_fill(idx[:, None] == idx[None, :], float("-inf"))
        return F.cross_entropy(logits, (idx + m // 2) % m)
