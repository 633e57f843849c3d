"""Vector-quantisation losses and the likelihood figures of a VQ-VAE (van den Oord et al. 2017,
"Neural Discrete Representation Learning").

- `straight_through(z_e, z_q)`: z_q in the forward pass, the identity's gradient to z_e in the
  backward pass (the paper's eq. 3 copies the decoder's gradient to the encoder).
- `commitment_loss(z_e, z_q, beta)`: beta * ||z_e - sg[z_q]||^2, averaged over elements (the
  third term of eq. 3; sonnet's `q_latent_loss`); the codebook term is replaced by EMA updates.
- `perplexity(counts)`: exp of the entropy of the codes' frequencies: K when every code is used
  equally, 1 when one code takes everything.
- `discretized_gaussian_log_likelihood(x, mean, log_scale)`: log p(x) of 8-bit pixels under a
  Gaussian integrated over each pixel's bin (width 1/255 in [0, 1]; the end bins reach to
  infinity), as DDPM's decoder (Ho et al. 2020) and PixelCNN++'s discretised likelihood.
- `bits_per_dim(nll_nats, dims)`: a negative log-likelihood in nats over `dims` dimensions, in
  bits per dimension: nll / (dims * ln 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def straight_through(z_e: Tensor, z_q: Tensor) -> Tensor:
    """z_q forward, gradient straight to z_e backward: z_e + sg[z_q - z_e]."""
    return z_e + (z_q - z_e).detach()


def commitment_loss(z_e: Tensor, z_q: Tensor, beta: float = 0.25) -> Tensor:
    """beta * mean((z_e - sg[z_q])^2): keeps the encoder's outputs near their codes."""
    return beta * F.mse_loss(z_e.float(), z_q.detach().float())


def perplexity(counts: Tensor) -> Tensor:
    """exp(-sum p log p) of the code frequencies p = counts / sum(counts) (0 log 0 = 0)."""
    p = counts.float() / counts.float().sum().clamp_min(1e-12)
    return torch.exp(-torch.special.xlogy(p, p).sum())


def discretized_gaussian_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """Elementwise log P(x) of uint8 pixels x under N(mean, exp(log_scale)^2) on [0, 1] pixel
    values, integrated over the bin [x/255 - 1/510, x/255 + 1/510] (0 and 255: the half-lines
    below and above). Computed from log-CDFs in the tail each bin lies nearer to, so a bin far
    out in either tail keeps its exact small probability instead of 0."""
    value = x.float() / 255
    inv = torch.exp(-log_scale.float())
    half = 1 / 510
    lower = (value - half - mean.float()) * inv
    upper = (value + half - mean.float()) * inv
    neg_inf, pos_inf = torch.full_like(lower, -math.inf), torch.full_like(upper, math.inf)
    lower = torch.where(x == 0, neg_inf, lower)
    upper = torch.where(x == 255, pos_inf, upper)
    # in the upper tail, P(a < X < b) = P(-b < X < -a): both bounds moved to the lower tail
    flip = (lower + upper) > 0
    a = torch.where(flip, -upper, lower)
    b = torch.where(flip, -lower, upper)
    log_b = torch.special.log_ndtr(b)
    return log_b + torch.log(-torch.expm1(torch.special.log_ndtr(a) - log_b))


def bits_per_dim(nll_nats: Tensor, dims: int) -> Tensor:
    """A negative log-likelihood in nats over `dims` dimensions, in bits per dimension."""
    return nll_nats / (dims * math.log(2))
