"""Denoising sentence reconstruction: TSDAE's token cross-entropy (Wang, Reimers & Gurevych
2021, "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised
Sentence Embedding Learning", Findings of EMNLP)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> None:
    if logits.dim() != 3 or targets.shape != logits.shape[:2] or mask.shape != targets.shape:
        raise ValueError(
            "expected logits (B, L, V) with targets and mask (B, L), got "
            f"{tuple(logits.shape)}, {tuple(targets.shape)} and {tuple(mask.shape)}"
        )


def token_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """TSDAE's reconstruction loss (Wang et al. 2021, eq. 1): the mean negative log-likelihood
    of the original sentence's tokens under the decoder, over the tokens that are real.

    Logits s_{t,v} (B, L, V) of the decoder at each position (teacher forcing: position t sees
    the original tokens before t and the damaged sentence's vector), target ids y_t (B, L), and
    mask m_t (B, L), 1 at tokens to predict and 0 at padding:

        loss = sum_{b,t} m_{b,t} * -log softmax(s_{b,t})[y_{b,t}] / sum_{b,t} m_{b,t}

    Every real token of the batch weighs the same (the mean is over tokens, not sentences), as
    in the paper's and sentence-transformers' implementations. Computed in fp32 under autocast.
    A batch with no token to predict is an error rather than a 0/0.
    """
    _check(logits, targets, mask)
    keep = mask.bool()
    if not bool(keep.any()):
        raise ValueError("token_cross_entropy got no token to predict (the mask is all zero)")
    nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    return nll[keep.flatten()].mean()


def token_accuracy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The fraction of real tokens (mask 1) whose most likely token is the target (no gradient;
    a figure to log beside `token_cross_entropy`)."""
    _check(logits, targets, mask)
    with torch.no_grad():
        keep = mask.bool()
        hits = (logits.argmax(dim=-1) == targets) & keep
        return hits.sum().float() / keep.sum().clamp_min(1).float()
