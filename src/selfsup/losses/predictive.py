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

Sampled negatives (the paper's; CPC_audio draws 128 per anchor): with `indices` (B, T, N) from
`sample_negatives`, N(b, t) is the positive and the N targets those flat indices into (B, T)
name, drawn uniformly with replacement from the chosen set without the positive itself; a drawn
padding target is left out. The cost is B T N scores instead of (B T)^2 for "all"; the drawn
targets are gathered in chunks and gathered again in the backward pass, so memory stays bounded
too (about B T N D floats for one chunk, never for all steps k at once).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from selfsup.errors import SelfsupError

NEGATIVES = ("all", "batch", "same")
CHUNK = 2048  # anchors per chunk of gathered negatives (CHUNK x N x D floats at a time)


def sample_negatives(
    shape: tuple[int, int],
    negatives: str,
    num: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor | None:
    """(B, T, num) flat indices into a (B, T) grid of targets: for each anchor (b, t), `num`
    draws, uniform with replacement, from its set of negatives ("all": every other (b', t');
    "batch": (b', t), b' != b; "same": (b, t'), t' != t), never the positive (b, t) itself. None
    when the set has at most `num` negatives (or num is 0): then every candidate is used."""
    if negatives not in NEGATIVES:
        raise SelfsupError(f"negatives must be one of {NEGATIVES}; got {negatives!r}")
    b, t = shape
    size = {"all": b * t, "batch": b, "same": t}[negatives]
    if num <= 0 or size - 1 <= num:
        return None
    # an offset in 1..size-1 from the anchor's own place in its set, wrapped: never the anchor
    offset = torch.randint(1, size, (b, t, num), device=device, generator=generator)
    rows = torch.arange(b, device=device)[:, None, None]
    steps = torch.arange(t, device=device)[None, :, None]
    if negatives == "all":
        return (rows * t + steps + offset) % (b * t)
    if negatives == "batch":
        return (rows + offset) % b * t + steps
    return rows * t + (steps + offset) % t


class _GatheredScores(torch.autograd.Function):
    """scores[m, n] = p[m] . z[idx[m, n]] for p (M, D), z (S, D), idx (M, N), in chunks of
    anchors; the backward pass gathers z again instead of keeping (M, N, D) alive."""

    @staticmethod
    def forward(ctx, p: Tensor, z: Tensor, idx: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(p, z, idx)
        return torch.cat(
            [
                torch.einsum("md,mnd->mn", p[i : i + CHUNK], z[idx[i : i + CHUNK]])
                for i in range(0, p.shape[0], CHUNK)
            ]
        )

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        p, z, idx = ctx.saved_tensors
        grad_p, grad_z = torch.empty_like(p), torch.zeros_like(z)
        for i in range(0, p.shape[0], CHUNK):
            g, ids = grad[i : i + CHUNK], idx[i : i + CHUNK]
            grad_p[i : i + CHUNK] = torch.einsum("mn,mnd->md", g, z[ids])
            grad_z.index_add_(
                0, ids.flatten(), (g[..., None] * p[i : i + CHUNK, None]).flatten(0, 1)
            )
        return grad_p, grad_z, None


def _sampled_logits(
    predictions: Tensor, targets: Tensor, valid: Tensor, indices: Tensor
) -> tuple[Tensor, Tensor]:
    """Logits (1, B T, 1 + N), the positive first, and the (1, B T) mask of valid anchors."""
    b, t, _ = predictions.shape
    if indices.shape[:2] != (b, t) or indices.dim() != 3:
        raise SelfsupError(
            f"negative indices must be (B, T, N) = ({b}, {t}, N); got {tuple(indices.shape)}"
        )
    p, z = predictions.flatten(0, 1).float(), targets.flatten(0, 1).float()
    idx = indices.flatten(0, 1)
    positive = (p * z).sum(1, keepdim=True)
    negative = _GatheredScores.apply(p, z, idx)
    logits = torch.cat([positive, negative], dim=1)
    v = valid.flatten()
    ok = torch.cat([v[:, None], v[idx]], dim=1)
    logits = logits.masked_fill(~ok, torch.finfo(logits.dtype).min)
    return logits[None], v[None]


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
        return _sampled_logits(predictions, targets, valid, indices)
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
