"""Predictive coding losses: CPC's InfoNCE over future steps (van den Oord et al., 2018,
"Representation Learning with Contrastive Predictive Coding", eq. 4).

For one prediction step k, row (b, t) holds the prediction p = W_k c_t and the target
z = z_{t+k}. The loss picks the target among candidates by the bilinear score p . z:

    L_k = - mean over valid (b, t) of  log  exp(p_bt . z_bt) / sum_{j in N(b,t)} exp(p_bt . z_j)

where N(b, t) holds the positive and the negatives, chosen by `negatives`:
- "all": every valid target of the batch, at every step of every sequence;
- "batch": the targets of the other sequences at the same step t;
- "same": the targets of the other steps t' of the same sequence b.
Invalid rows (padding) are neither anchors nor candidates. `cpc_accuracy` is the fraction of
valid anchors whose positive scores highest: the contrastive task's accuracy. Both are masked
sums, never boolean indexing, so that no training step waits for the device.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from selfsup.errors import SelfsupError

NEGATIVES = ("all", "batch", "same")


def _grouped_logits(
    predictions: Tensor, targets: Tensor, valid: Tensor | None, negatives: str
) -> tuple[Tensor, Tensor]:
    """Logits (G, n, n) whose positive is the diagonal, and the (G, n) mask of valid anchors.
    Invalid candidates get the lowest finite float, not -inf: a group with no valid candidate
    then gives finite (ignored) losses rather than NaN gradients."""
    if predictions.shape != targets.shape or predictions.dim() != 3:
        raise SelfsupError(
            f"predictions and targets must both be (B, T, D); got {tuple(predictions.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if negatives not in NEGATIVES:
        raise SelfsupError(f"negatives must be one of {NEGATIVES}; got {negatives!r}")
    b, t = predictions.shape[:2]
    if valid is None:
        valid = torch.ones(b, t, dtype=torch.bool, device=predictions.device)
    if negatives == "all":
        p, z, v = (
            predictions.flatten(0, 1)[None],
            targets.flatten(0, 1)[None],
            valid.flatten()[None],
        )
    elif negatives == "batch":
        p, z, v = predictions.transpose(0, 1), targets.transpose(0, 1), valid.transpose(0, 1)
    else:
        p, z, v = predictions, targets, valid
    logits = torch.bmm(p.float(), z.float().transpose(1, 2))
    logits = logits.masked_fill(~v[:, None, :], torch.finfo(logits.dtype).min)
    return logits, v


def cpc_info_nce(
    predictions: Tensor, targets: Tensor, valid: Tensor | None = None, negatives: str = "all"
) -> Tensor:
    """CPC's InfoNCE for one step k: predictions, targets (B, T, D), valid (B, T) bool. The mean
    over valid anchors; 0 when there is none (a step k beyond every sequence's length)."""
    logits, v = _grouped_logits(predictions, targets, valid, negatives)
    g, n, _ = logits.shape
    labels = torch.arange(n, device=logits.device).expand(g, n)
    losses = F.cross_entropy(logits.reshape(g * n, n), labels.reshape(-1), reduction="none")
    w = v.reshape(-1).to(losses.dtype)
    return (losses * w).sum() / w.sum().clamp_min(1)


def cpc_accuracy(
    predictions: Tensor, targets: Tensor, valid: Tensor | None = None, negatives: str = "all"
) -> Tensor:
    """The fraction of valid anchors whose own target scores highest among the candidates (NaN
    when there is no valid anchor)."""
    with torch.no_grad():
        logits, v = _grouped_logits(predictions, targets, valid, negatives)
        n = logits.shape[1]
        hit = logits.argmax(dim=2) == torch.arange(n, device=logits.device)
        return (hit & v).sum().float() / v.sum()
