"""TS-TCC's temporal contrasting loss (Eldele et al. 2021, eq. 3; the reference's `TC.forward`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def temporal_contrast(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """InfoNCE of cross-view prediction, over the batch, for K steps ahead.

    `pred[k, i]` is W_k c_i, sample i's context (from one view) mapped to step t_i + k + 1;
    `target[k, i]` is z_{t_i + k + 1} of the other view; both (K, N, D). For each k the target
    of sample i must pick its own prediction among the batch's by the score z_i . p_j:

        loss = -1 / (N K) sum_k sum_i log softmax_j(z_{k,i} . p_{k,j})[i]

    `valid` (K, N) bool leaves out targets beyond a series' length (the mean is over the valid
    (k, i) then); every prediction stays a candidate.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"temporal_contrast expects two (K, N, D) tensors of equal shape, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    with torch.autocast(pred.device.type, enabled=False):
        logits = target.float() @ pred.float().transpose(1, 2)  # (K, N targets, N predictions)
    own = torch.diagonal(F.log_softmax(logits, dim=2), dim1=1, dim2=2)  # (K, N)
    if valid is None:
        return -own.mean()
    w = valid.to(own.dtype)
    return -(own * w).sum() / w.sum().clamp_min(1)
