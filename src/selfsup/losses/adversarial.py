"""Adversarial losses: what a discriminator (critic) and a generator minimise.

Each takes the discriminator's raw scores (logits, any shape; one per sample or per patch) of
real and generated samples and returns the mean loss. The three kinds the generative methods
use:

- "non_saturating" (Goodfellow et al. 2014; DCGAN, BiGAN): the discriminator is a logistic
  classifier of real (1) against generated (0), -log D(x) - log(1 - D(G(z))); the generator
  maximises log D(G(z)) rather than minimising log(1 - D(G(z))), whose gradient vanishes when
  the discriminator wins early.
- "hinge" (Lim & Ye 2017; Miyato et al. 2018; VQGAN): max(0, 1 - D(x)) + max(0, 1 + D(G(z)))
  for the discriminator, -D(G(z)) for the generator.
- "least_squares" (Mao et al. 2017; CycleGAN): (D(x) - 1)^2 + D(G(z))^2 for the
  discriminator, (D(G(z)) - 1)^2 for the generator (CycleGAN's 1/2 factor on the
  discriminator's loss is left to the method).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

GAN_LOSSES = ("non_saturating", "hinge", "least_squares")


def _check(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown adversarial loss {kind!r}; valid: {', '.join(GAN_LOSSES)}")


def discriminator_loss(real: Tensor, fake: Tensor, kind: str = "non_saturating") -> Tensor:
    """The discriminator's loss on its scores of real and of generated samples (means over
    each, summed)."""
    _check(kind)
    if kind == "non_saturating":  # -log sigmoid(real) - log(1 - sigmoid(fake))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return (real - 1).pow(2).mean() + fake.pow(2).mean()


def generator_loss(fake: Tensor, kind: str = "non_saturating") -> Tensor:
    """The generator's loss on the discriminator's scores of its samples."""
    _check(kind)
    if kind == "non_saturating":  # -log sigmoid(fake)
        return F.softplus(-fake).mean()
    if kind == "hinge":
        return -fake.mean()
    return (fake - 1).pow(2).mean()


def discriminator_accuracy(real: Tensor, fake: Tensor) -> Tensor:
    """The share of real scores above 0 and generated scores below 0 (a figure to log: near 1
    the discriminator wins, near 0.5 neither does)."""
    return ((real > 0).float().mean() + (fake < 0).float().mean()) / 2
