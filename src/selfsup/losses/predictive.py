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

Sampled negatives (the paper's; CPC_audio draws 128 per anchor): with `indices` (G, N) from
`sample_negatives`, N(b, t) is the positive and the N targets drawn uniformly with replacement
from the chosen set, shared by the anchors of one sequence (of one step for "batch"); a drawn
target that is padding or the anchor's own positive is left out. The cost is B T N scores and
memory instead of (B T)^2 for "all", as one batched matrix product.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from selfsup.errors import SelfsupError

NEGATIVES = ("all", "batch", "same")


def sample_negatives(
    shape: tuple[int, int],
    negatives: str,
    num: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor | None:
    """(G, num) flat indices into a (B, T) grid of targets, drawn uniformly with replacement from
    each group's set: per sequence b for "all" (every (b', t')) and "same" ((b, t')), per step t
    for "batch" ((b', t)); every anchor of the group scores the same draws (one matrix product,
    not a gather per anchor), a draw that is the anchor's own positive is left out. None when
    the set holds at most `num` + 1 targets (or num is 0): then every candidate is used."""
    if negatives not in NEGATIVES:
        raise SelfsupError(f"negatives must be one of {NEGATIVES}; got {negatives!r}")
    b, t = shape
    size = {"all": b * t, "batch": b, "same": t}[negatives]
    if num <= 0 or size - 1 <= num:
        return None
    if negatives == "all":
        return torch.randint(0, b * t, (b, num), device=device, generator=generator)
    draw = torch.randint(
        0, size, (b if negatives == "same" else t, num), device=device, generator=generator
    )
    if negatives == "same":
        return torch.arange(b, device=device)[:, None] * t + draw
    return draw * t + torch.arange(t, device=device)[:, None]


def _sampled_logits(
    predictions: Tensor, targets: Tensor, valid: Tensor, negatives: str, indices: Tensor
) -> tuple[Tensor, Tensor]:
    """Logits (G, n, 1 + N), the positive first, and the (G, n) mask of valid anchors; groups
    are the sequences ("all", "same") or the steps ("batch")."""
    b, t, _ = predictions.shape
    groups = t if negatives == "batch" else b
    if indices.dim() != 2 or indices.shape[0] != groups:
        raise SelfsupError(
            f"negative indices must be ({groups}, N) for negatives={negatives!r}; got "
            f"{tuple(indices.shape)}"
        )
    own = torch.arange(b * t, device=predictions.device).reshape(b, t)
    p, z, v = predictions.float(), targets.float(), valid
    if negatives == "batch":
        p, z, v, own = p.transpose(0, 1), z.transpose(0, 1), v.transpose(0, 1), own.T
    positive = (p * z).sum(2, keepdim=True)
    negative = torch.bmm(p, targets.flatten(0, 1).float()[indices].transpose(1, 2))
    logits = torch.cat([positive, negative], dim=2)
    ok = valid.flatten()[indices][:, None] & (indices[:, None] != own[..., None])
    ok = torch.cat([torch.ones_like(ok[..., :1]), ok], dim=2)
    return logits.masked_fill(~ok, torch.finfo(logits.dtype).min), v


def _grouped_logits(
    predictions: Tensor,
    targets: Tensor,
    valid: Tensor | None,
    negatives: str,
    indices: Tensor | None = None,
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
    if indices is not None:
        return _sampled_logits(predictions, targets, valid, negatives, indices)
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


def _logits(
    predictions: Tensor,
    targets: Tensor,
    valid: Tensor | None,
    negatives: str,
    indices: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Logits (G, n, m), the (G, n) mask of valid anchors and the (G, n) positive columns."""
    logits, v = _grouped_logits(predictions, targets, valid, negatives, indices)
    g, n, _ = logits.shape
    if indices is not None:
        return logits, v, torch.zeros(g, n, dtype=torch.long, device=logits.device)
    return logits, v, torch.arange(n, device=logits.device).expand(g, n)


def cpc_info_nce(
    predictions: Tensor,
    targets: Tensor,
    valid: Tensor | None = None,
    negatives: str = "all",
    indices: Tensor | None = None,
) -> Tensor:
    """CPC's InfoNCE for one step k: predictions, targets (B, T, D), valid (B, T) bool, and the
    sampled negatives' `indices` (B, T, N) (None: every candidate of the set). The mean over
    valid anchors; 0 when there is none (a step k beyond every sequence's length)."""
    logits, v, labels = _logits(predictions, targets, valid, negatives, indices)
    m = logits.shape[2]
    losses = F.cross_entropy(logits.reshape(-1, m), labels.reshape(-1), reduction="none")
    w = v.reshape(-1).to(losses.dtype)
    return (losses * w).sum() / w.sum().clamp_min(1)


def cpc_accuracy(
    predictions: Tensor,
    targets: Tensor,
    valid: Tensor | None = None,
    negatives: str = "all",
    indices: Tensor | None = None,
) -> Tensor:
    """The fraction of valid anchors whose own target scores highest among the candidates (NaN
    when there is no valid anchor)."""
    with torch.no_grad():
        logits, v, labels = _logits(predictions, targets, valid, negatives, indices)
        hit = logits.argmax(dim=2) == labels
        return (hit & v).sum().float() / v.sum()
