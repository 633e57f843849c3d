"""TS2Vec's hierarchical contrastive loss (Yue et al. 2022, sec. 3.3; reference
github.com/yuezhihan/ts2vec, models/losses.py), on the representations z1, z2 (B, T, D) of the
same T time steps seen in two overlapping crops.

- instance-wise: at each step t, z1[i, t] must pick z2[i, t] among the other 2B - 1
  representations of step t in the batch (both views), and symmetrically; raw dot products.
- temporal: in series i, z1[i, t] must pick z2[i, t] among the other 2T - 1 steps of both views
  of series i, and symmetrically.
- hierarchical: alpha * instance + (1 - alpha) * temporal at every scale, halving the time axis by
  max-pooling (kernel 2, an odd last step dropped) until one step is left, where only the
  instance term applies; the temporal term starts at scale `temporal_unit`. The mean over scales.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _contrast(z: torch.Tensor, n: int) -> torch.Tensor:
    """z (G, 2n, D): in each group, element k and k + n are positives, every other element of
    the group a negative. The mean over both directions of -log softmax of the positive."""
    # In fp32 even under bf16 autocast: raw dot products of 320-d vectors need the mantissa.
    with torch.autocast(z.device.type, enabled=False):
        z = z.float()
        sim = z @ z.transpose(1, 2)  # G x 2n x 2n
    # drop the diagonal: row r keeps columns != r, in order (2n - 1 logits)
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1] + torch.triu(sim, diagonal=1)[:, :, 1:]
    nll = -F.log_softmax(logits, dim=-1)
    k = torch.arange(n, device=z.device)
    # the positive of row k is column n + k, at position n + k - 1 once the diagonal is gone
    return (nll[:, k, n + k - 1].mean() + nll[:, n + k, k].mean()) / 2


def instance_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Per time step, each series against the batch's other series (0 for a batch of one)."""
    if z1.shape[0] == 1:
        return z1.new_zeros(())
    return _contrast(torch.cat([z1, z2], dim=0).transpose(0, 1), z1.shape[0])


def temporal_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Per series, each time step against the series' other steps (0 for one step)."""
    if z1.shape[1] == 1:
        return z1.new_zeros(())
    return _contrast(torch.cat([z1, z2], dim=1), z1.shape[1])


def hierarchical_contrastive_loss(
    z1: torch.Tensor, z2: torch.Tensor, alpha: float = 0.5, temporal_unit: int = 0
) -> torch.Tensor:
    """The instance and temporal losses over time scales 1, 2, 4, ... (max-pooled by 2 until one
    step is left), averaged over the scales; z1, z2 (B, T, D)."""
    loss = z1.new_zeros(())
    scales = 0
    while z1.shape[1] > 1:
        if alpha != 0:
            loss = loss + alpha * instance_contrastive_loss(z1, z2)
        if scales >= temporal_unit and alpha != 1:
            loss = loss + (1 - alpha) * temporal_contrastive_loss(z1, z2)
        scales += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if z1.shape[1] == 1:
        if alpha != 0:
            loss = loss + alpha * instance_contrastive_loss(z1, z2)
        scales += 1
    return loss / scales
