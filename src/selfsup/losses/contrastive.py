"""Contrastive losses with in-batch negatives: NT-Xent (SimCLR) and InfoNCE (SimCSE, CPC)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy of SimCLR (Chen et al., 2020, eq. 1).

    `z1[i]` and `z2[i]` are projections of two views of sample i, shape (N, D). With
    u = normalize(concat(z1, z2)) and s_ij = u_i . u_j / temperature, each of the 2N anchors i
    has one positive p(i) (the other view) and 2N - 2 negatives:

        loss = mean_i [ -s_{i,p(i)} + log sum_{j != i} exp(s_ij) ]

    The self-similarity s_ii is masked out of the denominator.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"nt_xent expects two (N, D) tensors of equal shape, got {z1.shape} and {z2.shape}"
        )
    n = z1.shape[0]
    # In fp32 even under bf16 autocast: logits of |s| <= 1/temperature need the mantissa.
    with torch.autocast(z1.device.type, enabled=False):
        u = F.normalize(torch.cat([z1, z2]).float(), dim=1)
        logits = u @ u.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(logits.device)
    return F.cross_entropy(logits, targets)


def info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    temperature: float = 0.05,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives, on cosine similarity (SimCSE, Gao et al. 2021, eq. 1;
    van den Oord et al. 2018).

    Row i of `queries` (N, D) has one positive, row i of `keys` (N, D), and the other rows of
    `keys` as negatives. With s_ij = cos(q_i, k_j) / temperature:

        loss = mean_i [ -s_ii + log sum_j exp(s_ij) ]

    `exclude` (N, N) bool, optional: True at (i, j) removes key j from row i's denominator
    (a false negative, such as a duplicate of sample i); the diagonal must stay False.
    """
    if queries.shape != keys.shape or queries.dim() != 2:
        raise ValueError(
            f"info_nce expects two (N, D) tensors of equal shape, got {queries.shape} and "
            f"{keys.shape}"
        )
    with torch.autocast(queries.device.type, enabled=False):
        logits = F.normalize(queries.float(), dim=1) @ F.normalize(keys.float(), dim=1).T
        logits = logits / temperature
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    targets = torch.arange(len(queries), device=logits.device)
    return F.cross_entropy(logits, targets)
