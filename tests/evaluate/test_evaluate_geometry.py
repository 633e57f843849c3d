import math

import numpy as np
import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate import alignment, collapse_stats, effective_rank, uniformity


def unit(v):
    return v / v.norm()


def reference_alignment(z1, z2, alpha):
    total = 0.0
    for a, b in zip(z1.double(), z2.double(), strict=True):
        total += float((unit(a) - unit(b)).norm()) ** alpha
    return total / len(z1)


def reference_uniformity(z, t):
    z = [unit(v) for v in z.double()]
    values = []
    for i in range(len(z)):
        for j in range(i + 1, len(z)):
            values.append(math.exp(-t * float((z[i] - z[j]).pow(2).sum())))
    return math.log(sum(values) / len(values))


@pytest.mark.parametrize("alpha", [1, 2, 3])
def test_alignment_matches_reference(alpha):
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(50, 8, generator=gen), torch.randn(50, 8, generator=gen)
    assert alignment(z1, z2, alpha) == pytest.approx(reference_alignment(z1, z2, alpha), rel=1e-5)
    assert alignment(z1, 4.0 * z1) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("t", [0.5, 2])
def test_uniformity_matches_reference(t):
    z = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    assert uniformity(z, t) == pytest.approx(reference_uniformity(z, t), rel=1e-5)


def test_uniformity_subsample_is_seeded_and_close_to_full():
    z = torch.randn(600, 8, generator=torch.Generator().manual_seed(2))
    full = uniformity(z)
    sub = uniformity(z, max_samples=300)
    assert sub == uniformity(z, max_samples=300)
    assert sub != uniformity(z, max_samples=300, seed=1)
    assert sub == pytest.approx(full, abs=0.05)


def test_collapsed_embeddings():
    z = torch.randn(1, 64).repeat(500, 1) * torch.rand(500, 1)  # one direction, varied norms
    stats = collapse_stats(z)
    assert stats["effective_rank"] == pytest.approx(1.0, abs=0.01)
    assert stats["std"] == pytest.approx(0.0, abs=1e-5)
    assert stats["dim"] == 64
    assert stats["std_reference"] == pytest.approx(1 / 8)


def test_isotropic_gaussian_is_healthy():
    z = torch.randn(4000, 32, generator=torch.Generator().manual_seed(3))
    stats = collapse_stats(z)
    assert stats["effective_rank"] > 0.95 * 32
    assert stats["std"] == pytest.approx(stats["std_reference"], rel=0.05)


def test_effective_rank_matches_formula_and_low_rank_data():
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(200, 3, generator=gen) @ torch.randn(3, 20, generator=gen)
    s = np.linalg.svd(z.double().numpy(), compute_uv=False)
    p = s / s.sum() + 1e-7
    assert effective_rank(z) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert 1.0 < effective_rank(z) <= 3.0 + 1e-3


def test_bad_shapes_give_clear_errors():
    with pytest.raises(SelfsupError, match="two views of one shape"):
        alignment(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(SelfsupError, match="N >= 2"):
        uniformity(torch.randn(1, 3))
    with pytest.raises(SelfsupError, match=r"\(N, D\)"):
        collapse_stats(torch.randn(10))
