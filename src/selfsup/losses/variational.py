"""Variational autoencoder losses (Kingma & Welling 2014; beta-VAE, Higgins et al. 2017).

Pure functions of the encoder's diagonal Gaussian posterior q(z|x) = N(mu, exp(logvar)) and the
decoder's output. Every figure is per sample in nats, summed over latent dimensions and pixels,
as disentanglement_lib's `vae.py` sums them (`compute_gaussian_kl`, `bernoulli_loss`) before
averaging over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample (B,), summed over the latent dimensions:
    0.5 * sum(mu^2 + exp(logvar) - logvar - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).flatten(1).sum(1)


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    """-log p(x|z) per sample (B,) of a Bernoulli decoder with these logits, summed over pixels;
    target in [0, 1] (binary images; grey values give the cross-entropy, not a likelihood)."""
    nll = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return nll.flatten(1).sum(1)


def gaussian_nll(mean: Tensor, target: Tensor, sigma: float = 1.0) -> Tensor:
    """-log p(x|z) per sample (B,) of a Gaussian decoder N(mean, sigma^2) with fixed sigma,
    summed over pixels: 0.5 * ((x - mean)^2 / sigma^2 + log(2 pi sigma^2))."""
    var = sigma * sigma
    per_pixel = 0.5 * ((target - mean).pow(2) / var + math.log(2 * math.pi * var))
    return per_pixel.flatten(1).sum(1)


def reparameterise(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): a sample of q(z|x) that gradients reach."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


def vae_terms(
    decoded: Tensor,
    target: Tensor,
    mu: Tensor,
    logvar: Tensor,
    decoder: str = "bernoulli",
    sigma: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """(reconstruction, kl) per sample (B,), in nats: -log p(x|z) of the decoder's output
    (Bernoulli logits or Gaussian means) for one sample z, and KL(q(z|x) || p(z))."""
    if decoder == "bernoulli":
        reconstruction = bernoulli_nll(decoded, target)
    elif decoder == "gaussian":
        reconstruction = gaussian_nll(decoded, target, sigma)
    else:
        raise ValueError(f"decoder must be 'bernoulli' or 'gaussian'; got {decoder!r}")
    return reconstruction, gaussian_kl(mu, logvar)


def beta_vae_loss(
    decoded: Tensor,
    target: Tensor,
    mu: Tensor,
    logvar: Tensor,
    beta: float = 1.0,
    decoder: str = "bernoulli",
    sigma: float = 1.0,
) -> Tensor:
    """The batch mean of reconstruction + beta * KL (Higgins et al. 2017, eq. 4): beta = 1 is
    the negative ELBO of the VAE; beta > 1 presses the posterior towards the factorised prior."""
    reconstruction, kl = vae_terms(decoded, target, mu, logvar, decoder, sigma)
    return (reconstruction + beta * kl).mean()
