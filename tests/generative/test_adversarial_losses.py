"""The adversarial losses against their textbook forms (values and gradients)."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import discriminator_accuracy, discriminator_loss, generator_loss


def scores():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(6, 1, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    fake = torch.randn(6, 1, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    return real, fake


def reference_d(real, fake, kind):
    if kind == "non_saturating":  # binary cross-entropy: real is 1, generated is 0
        ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
        return F.binary_cross_entropy(torch.sigmoid(real), ones) + F.binary_cross_entropy(
            torch.sigmoid(fake), zeros
        )
    if kind == "hinge":
        return torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean()
    return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))


def reference_g(fake, kind):
    if kind == "non_saturating":
        return F.binary_cross_entropy(torch.sigmoid(fake), torch.ones_like(fake))
    if kind == "hinge":
        return -fake.mean()
    return F.mse_loss(fake, torch.ones_like(fake))


@pytest.mark.parametrize("kind", ["non_saturating", "hinge", "least_squares"])
def test_losses_match_their_textbook_forms(kind):
    real, fake = scores()
    ours = discriminator_loss(real, fake, kind)
    ours_grads = torch.autograd.grad(ours, (real, fake))
    want = reference_d(real, fake, kind)
    want_grads = torch.autograd.grad(want, (real, fake))
    assert torch.allclose(ours, want)
    for a, b in zip(ours_grads, want_grads, strict=True):
        assert torch.allclose(a, b)
    ours_g, want_g = generator_loss(fake, kind), reference_g(fake, kind)
    assert torch.allclose(ours_g, want_g)
    grad_ours = torch.autograd.grad(ours_g, fake)[0]
    assert torch.allclose(grad_ours, torch.autograd.grad(want_g, fake)[0])


def test_unknown_kind_is_refused():
    real, fake = scores()
    with pytest.raises(ValueError, match="hinge"):
        discriminator_loss(real, fake, "wasserstein")


def test_discriminator_accuracy():
    real = torch.tensor([1.0, -1.0, 2.0, 3.0])
    fake = torch.tensor([-1.0, -2.0, 1.0, 0.0])  # a score of exactly 0 is not a hit
    assert discriminator_accuracy(real, fake) == pytest.approx((3 / 4 + 2 / 4) / 2)
