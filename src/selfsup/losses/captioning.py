"""Captioning losses: token negative log-likelihood with a padding mask, a caption's total
log-probability, and the contrastive log-ratio loss of Dai & Lin (2017).

Contrastive learning for image captioning (Dai & Lin, NeurIPS 2017, eq. 4-7): with the target
model p_m and a frozen reference p_n (the MLE model), G(c, I) = log p_m(c|I) - log p_n(c|I) and
h = 1 / (1 + nu exp(-G)) = sigmoid(G - log nu). The objective raises ln h on matched pairs
(T_m of them) and ln(1 - h) on mismatched ones (T_n), each averaged over its own count:
loss = -mean_pos ln h - mean_neg ln(1 - h). The released code (doubledaibo/clcaption_nips2017,
misc/cl_cross.lua) builds the criterion with log nu = 0 and weighs each of its `vu` = 5
negative draws by 1/vu (the same means as here), and clips h to [1e-20, 1] before the log:
`clip` below (gradient zero where clipped).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_CLIP = math.log(1e-20)  # the released code's nn.Clip(1e-20, 1.0) before the log


def token_nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the real tokens: logits (B, L, V), targets (B, L), mask
    (B, L) 1 on tokens to score (padding 0)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = mask.to(nll.dtype)
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def sequence_log_prob(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """log p(caption | image) per row (B,): the sum of the real tokens' log-probabilities."""
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (logp * mask.to(logp.dtype)).sum(dim=1)


def contrastive_caption_loss(
    model_pos: torch.Tensor,
    reference_pos: torch.Tensor,
    model_neg: torch.Tensor,
    reference_neg: torch.Tensor,
    nu: float = 1.0,
    clip: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Dai & Lin's loss from sequence log-probabilities of positives (T_m,) and negatives
    (T_n,) under the target model and the frozen reference; figures: the mean log-ratio G of
    each side and the mean h of positives."""
    g_pos = model_pos - reference_pos
    g_neg = model_neg - reference_neg
    shift = math.log(nu)
    log_h_pos = F.logsigmoid(g_pos - shift)
    log_not_h_neg = F.logsigmoid(-(g_neg - shift))
    if clip:
        log_h_pos = log_h_pos.clamp(min=LOG_CLIP)
        log_not_h_neg = log_not_h_neg.clamp(min=LOG_CLIP)
    loss = -log_h_pos.mean() - log_not_h_neg.mean()
    figures = {
        "g_pos": g_pos.detach().mean(),
        "g_neg": g_neg.detach().mean(),
        "h_pos": log_h_pos.detach().exp().mean(),
    }
    return loss, figures
