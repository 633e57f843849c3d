"""Language-modelling losses: masked-token (BERT) and next-token (GPT) cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor | None = None
) -> torch.Tensor:
    """BERT's masked-language-model loss (Devlin et al. 2019, "BERT", sec. 3.1, task #1).

    `logits` (..., V) are the model's scores over the vocabulary at each position, `targets`
    (...) the original token ids there, `selected` (...) bool the positions chosen for
    prediction (None: every given position, when the caller already kept only those):

        loss = sum_{i selected} -log softmax(logits_i)[targets_i] / max(1, #selected)

    Only the chosen positions count, whatever they were replaced by ([MASK], a random token,
    or themselves). A batch with no chosen position gives 0 (with a graph), not NaN.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be targets {tuple(targets.shape)} plus a "
            "vocabulary dimension"
        )
    if selected is not None and selected.shape != targets.shape:
        raise ValueError(
            f"selected {tuple(selected.shape)} must be shaped like targets {tuple(targets.shape)}"
        )
    with torch.autocast(logits.device.type, enabled=False):  # log-softmax over V in fp32
        nll = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        )
    if selected is None:
        return nll.sum() / max(1, nll.numel())
    weights = selected.reshape(-1).to(nll.dtype)
    return (nll * weights).sum() / weights.sum().clamp_min(1.0)


def next_token_loss(
    logits: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Autoregressive language-model loss (Radford et al. 2018, "Improving language
    understanding by generative pre-training", eq. 1): predict token t+1 from positions <= t.

    `logits` (B, L, V) at every position of a causal model, `ids` (B, L) the input tokens,
    `attention_mask` (B, L) 1 at real tokens, 0 at padding:

        loss = sum_{b, t: m_{b,t+1} = 1} -log softmax(logits_{b,t})[ids_{b,t+1}]
               / #{b, t: m_{b,t+1} = 1}

    The last position predicts nothing and a padding target is ignored.
    """
    if logits.dim() != 3 or logits.shape[:2] != ids.shape or ids.shape != attention_mask.shape:
        raise ValueError(
            f"next_token_loss expects logits (B, L, V), ids and mask (B, L); got "
            f"{tuple(logits.shape)}, {tuple(ids.shape)}, {tuple(attention_mask.shape)}"
        )
    return masked_token_loss(logits[:, :-1], ids[:, 1:], attention_mask[:, 1:].bool())
