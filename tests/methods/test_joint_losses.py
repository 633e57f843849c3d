"""The joint-embedding losses against plain references (explicit loops): values and gradients."""

import math

import pytest
import torch

from selfsup.losses import (
    barlow_twins_loss,
    negative_cosine,
    normalized_mse,
    vicreg_loss,
    vicreg_terms,
)


def pair(n: int = 6, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    return a, b


def cos(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).sum() / (u.pow(2).sum().sqrt() * v.pow(2).sum().sqrt())


def ref_normalized_mse(p, z):
    total = 0.0
    for i in range(len(p)):
        pn = p[i] / p[i].pow(2).sum().sqrt()
        zn = z[i] / z[i].pow(2).sum().sqrt()
        total = total + (pn - zn).pow(2).sum()
    return total / len(p)


def ref_negative_cosine(p, z):
    return -sum(cos(p[i], z[i]) for i in range(len(p))) / len(p)


def ref_barlow(z1, z2, lambd, eps=1e-5):
    n, d = z1.shape

    def standardise(z):
        cols = []
        for k in range(d):
            col = z[:, k]
            mean = col.sum() / n
            var = ((col - mean) ** 2).sum() / n
            cols.append((col - mean) / torch.sqrt(var + eps))
        return torch.stack(cols, dim=1)

    a, b = standardise(z1), standardise(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[s, i] * b[s, j] for s in range(n)) / n
            loss = loss + ((1 - c) ** 2 if i == j else lambd * c**2)
    return loss


def ref_vicreg(z1, z2, sim, var_w, cov_w, eps=1e-4):
    """facebookresearch/vicreg main_vicreg.py: the variance hinge AVERAGED over the two
    branches (std_loss = mean(relu(1 - std_x)) / 2 + mean(relu(1 - std_y)) / 2), the
    covariance term summed over them."""
    n, d = z1.shape
    inv = sum((z1[s, k] - z2[s, k]) ** 2 for s in range(n) for k in range(d)) / (n * d)
    var = 0.0
    cov = 0.0
    for z in (z1, z2):
        means = [z[:, k].sum() / n for k in range(d)]
        for k in range(d):
            v = sum((z[s, k] - means[k]) ** 2 for s in range(n)) / (n - 1)
            var = var + torch.clamp(1 - torch.sqrt(v + eps), min=0) / d / 2
        for k in range(d):
            for m in range(d):
                if k != m:
                    c = sum((z[s, k] - means[k]) * (z[s, m] - means[m]) for s in range(n)) / (n - 1)
                    cov = cov + c**2 / d
    return sim * inv + var_w * var + cov_w * cov


def assert_same(loss_fn, ref_fn, a, b):
    got, want = loss_fn(a, b), ref_fn(a, b)
    assert torch.allclose(got.double(), want, atol=1e-6, rtol=1e-5), (got, want)
    ga = torch.autograd.grad(got, (a, b))
    gb = torch.autograd.grad(want, (a, b))
    for x, y in zip(ga, gb, strict=True):
        assert torch.allclose(x.double(), y, atol=1e-6, rtol=1e-5)


def test_normalized_mse_matches_reference_and_is_two_minus_two_cos():
    p, z = pair()
    assert_same(normalized_mse, ref_normalized_mse, p, z)
    assert torch.allclose(normalized_mse(p, 3 * p), torch.zeros((), dtype=p.dtype), atol=1e-6)
    assert math.isclose(normalized_mse(p, -p).item(), 4.0, rel_tol=1e-6)


def test_negative_cosine_matches_reference():
    p, z = pair(seed=1)
    assert_same(negative_cosine, ref_negative_cosine, p, z)
    assert math.isclose(negative_cosine(p, 2 * p).item(), -1.0, rel_tol=1e-6)


def test_barlow_twins_matches_reference():
    z1, z2 = pair(n=7, d=3, seed=2)
    assert_same(
        lambda a, b: barlow_twins_loss(a, b, 0.1), lambda a, b: ref_barlow(a, b, 0.1), z1, z2
    )


def test_barlow_twins_is_zero_for_identical_decorrelated_views():
    # Columns 1-3 of a Hadamard matrix: mean 0, orthogonal, so C is the identity: loss ~ 0.
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    z = torch.kron(torch.kron(h2, h2), h2)[:, 1:4]
    assert barlow_twins_loss(z, z, 5e-3).item() < 1e-3


def test_vicreg_matches_reference():
    z1, z2 = pair(n=5, d=3, seed=3)
    z1.data.mul_(0.5)  # some dimensions below std 1, so the hinge is active
    assert_same(
        lambda a, b: vicreg_loss(a, b, 25.0, 25.0, 1.0),
        lambda a, b: ref_vicreg(a, b, 25.0, 25.0, 1.0),
        z1,
        z2,
    )
    inv, var, cov = vicreg_terms(z1, z2)
    assert inv > 0 and var > 0 and cov > 0


def test_vicreg_variance_is_the_mean_of_the_two_branches_hinges():
    """The 25/25/1 coefficients were tuned with the variance averaged over the branches: a
    batch whose two branches both have std 0.5 in every dimension has variance term 0.5."""
    g = torch.Generator().manual_seed(4)
    z = torch.randn(64, 4, generator=g, dtype=torch.float64)
    z = (z - z.mean(0)) / z.std(0) * 0.5  # unbiased std exactly 0.5 per dimension
    _, var, _ = vicreg_terms(z, z.clone(), eps=0.0)
    assert math.isclose(var.item(), 0.5, rel_tol=1e-9)


LOSSES = [normalized_mse, negative_cosine, barlow_twins_loss, vicreg_loss]


@pytest.mark.parametrize("fn", LOSSES, ids=lambda f: f.__name__)
def test_losses_reject_mismatched_shapes(fn):
    with pytest.raises(ValueError, match="equal shape"):
        fn(torch.zeros(4, 3), torch.zeros(4, 2))
