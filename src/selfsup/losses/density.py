"""Density models of binary images: the RBM's free energy, contrastive-divergence surrogate and
pseudo-likelihood, and NADE's exact negative log-likelihood.

Every function takes binary visible vectors `v` (B, D) as floats in {0, 1} and the model's
weights; all figures are in nats per image (natural logarithm, summed over the D pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError

NADE_BLOCK = 64  # pixels per block of NADE's running sum (`nade_logits`)


def rbm_free_energy(
    v: torch.Tensor, weight: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor
) -> torch.Tensor:
    """F(v) = -b.v - sum_j softplus(c_j + W_j.v), per row (B,), of a Bernoulli-Bernoulli RBM
    with weights W (H, D), visible bias b (D,), hidden bias c (H,); p(v) = exp(-F(v)) / Z."""
    return -v @ visible_bias - F.softplus(v @ weight.t() + hidden_bias).sum(-1)


def cd_surrogate(
    v_data: torch.Tensor,
    v_model: torch.Tensor,
    weight: torch.Tensor,
    visible_bias: torch.Tensor,
    hidden_bias: torch.Tensor,
) -> torch.Tensor:
    """mean F(v_data) - mean F(v_model), v_model held fixed (the negative samples of CD-k or of
    persistent chains). Its gradient is the contrastive-divergence gradient: for W,
    -(<p(h|v) v^T>_data - <p(h|v) v^T>_model), and likewise for the biases (Hinton 2002;
    Tieleman 2008), so plain SGD on it is the textbook (P)CD update with hidden probabilities
    in both phases, as scikit-learn's BernoulliRBM applies it."""
    v_model = v_model.detach()
    return (
        rbm_free_energy(v_data, weight, visible_bias, hidden_bias).mean()
        - rbm_free_energy(v_model, weight, visible_bias, hidden_bias).mean()
    )


def _flip_logits(
    v: torch.Tensor, weight: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor
) -> torch.Tensor:
    """F(v with bit d flipped) - F(v), for every row and every d (B, D), in O(B D H)."""
    pre = v @ weight.t() + hidden_bias  # (B, H)
    sign = 1 - 2 * v  # +1 where the bit turns on, -1 where it turns off
    flipped = pre[:, None, :] + sign[:, :, None] * weight.t()[None]  # (B, D, H)
    return (
        -sign * visible_bias - F.softplus(flipped).sum(-1) + F.softplus(pre).sum(-1, keepdim=True)
    )


def rbm_pseudo_loglik(
    v: torch.Tensor,
    weight: torch.Tensor,
    visible_bias: torch.Tensor,
    hidden_bias: torch.Tensor,
    bits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log pseudo-likelihood per row (B,): sum_d log p(v_d | v_-d), where
    log p(v_d | v_-d) = log sigmoid(F(v with d flipped) - F(v)) (Besag 1975).

    `bits` (B,) int: the one-flip estimate scikit-learn's `BernoulliRBM.score_samples` draws,
    D * log sigmoid(F(v flipped at bits) - F(v)); None: exact over all D bits."""
    if bits is None:
        return F.logsigmoid(_flip_logits(v, weight, visible_bias, hidden_bias)).sum(-1)
    flipped = v.clone()
    rows = torch.arange(len(v), device=v.device)
    flipped[rows, bits] = 1 - flipped[rows, bits]
    gap = rbm_free_energy(flipped, weight, visible_bias, hidden_bias) - rbm_free_energy(
        v, weight, visible_bias, hidden_bias
    )
    return v.shape[1] * F.logsigmoid(gap)


def nade_logits(
    v: torch.Tensor,
    weight: torch.Tensor,
    hidden_bias: torch.Tensor,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor,
    block: int = NADE_BLOCK,
) -> torch.Tensor:
    """Logits of p(v_d = 1 | v_<d), (B, D), of NADE (Larochelle & Murray 2011) in the order of
    the columns: h_d = sigmoid(c + W[:, <d] v_<d) with W (H, D), c (H,); logit_d = b_d +
    V_d . h_d with V (D, H), b (D,). The pre-activations are a running sum over the pixels (the
    paper's weight sharing), O(B D H) time: within each `block` of pixels an exclusive
    cumulative sum, carried across blocks by one matrix product, so no (B, D, H) tensor is held
    at once (on a CPU, allocating those cost four times the arithmetic)."""
    running = hidden_bias.expand(len(v), -1)
    logits = []
    for start in range(0, v.shape[1], block):
        vb, wb = v[:, start : start + block], weight[:, start : start + block]
        contributions = vb[:, :, None] * wb.t()[None]  # (B, k, H): W[:, d] v_d
        pre = running[:, None, :] + (contributions.cumsum(1) - contributions)  # over k < d
        logits.append(
            torch.einsum("bkh,kh->bk", torch.sigmoid(pre), out_weight[start : start + block])
        )
        running = running + vb @ wb.t()
    return torch.cat(logits, 1) + out_bias


def nade_nll(
    v: torch.Tensor,
    weight: torch.Tensor,
    hidden_bias: torch.Tensor,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor,
    block: int = NADE_BLOCK,
) -> torch.Tensor:
    """-log p(v) per row (B,) in nats: sum_d of the binary cross-entropy of p(v_d | v_<d)."""
    if v.dim() != 2 or weight.shape[1] != v.shape[1]:
        raise SelfsupError(
            f"NADE takes visible vectors (B, {weight.shape[1]}); got {tuple(v.shape)}"
        )
    logits = nade_logits(v, weight, hidden_bias, out_weight, out_bias, block)
    return F.binary_cross_entropy_with_logits(logits, v, reduction="none").sum(-1)
