"""Losses of unpaired image translation (CycleGAN, Zhu et al. 2017).

Two generators G: A -> B and F: B -> A are trained against a discriminator per domain
(`losses.adversarial`, least squares in CycleGAN) and held to two L1 terms:

- cycle consistency, |F(G(a)) - a|_1 and |G(F(b)) - b|_1: a translation must keep enough of
  its input to map back to it (weighted by lambda_cycle, 10 in the paper);
- identity, |G(b) - b|_1 and |F(a) - a|_1: a generator given an image of its target domain
  should leave it alone (weighted by lambda_identity * lambda_cycle, 0.5 * 10), which keeps
  colour composition (the paper's Monet -> photo).
"""

from __future__ import annotations

from torch import Tensor


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    """Mean absolute error between an image mapped to the other domain and back, and itself."""
    return (reconstructed - original).abs().mean()


def identity_loss(mapped: Tensor, original: Tensor) -> Tensor:
    """Mean absolute error between a generator's output on an image of its own target domain
    and that image."""
    return (mapped - original).abs().mean()


def per_sample_l1(x: Tensor, y: Tensor) -> Tensor:
    """The mean absolute error of each sample (N,): the held-out cycle error of each image."""
    return (x - y).abs().flatten(1).mean(1)
