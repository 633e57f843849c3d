"""nt_xent against a plain loop over anchors, values and gradients."""

import math

import torch

from selfsup.losses import nt_xent


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        positive = (i + n) % n2
        numerator = torch.exp(z[i] @ z[positive] / t)
        denominator = sum(torch.exp(z[i] @ z[k] / t) for k in range(n2) if k != i)
        total = total - torch.log(numerator / denominator)
    return total / n2


def test_nt_xent_matches_reference_value_and_gradient():
    torch.manual_seed(0)
    for t in (0.1, 0.5):
        a = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
        b = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
        ours = nt_xent(a.float(), b.float(), t)
        ref = reference_nt_xent(a, b, t)
        assert torch.allclose(ours.double(), ref, atol=1e-5)
        ga = torch.autograd.grad(ours, a)[0]
        gr = torch.autograd.grad(ref, a)[0]
        assert torch.allclose(ga, gr, atol=1e-5)


def test_nt_xent_identical_views_far_apart_gives_low_loss():
    z = torch.eye(8) * 10
    assert nt_xent(z, z, 0.1) < 1e-3
    # All projections equal: every candidate is as likely as the positive.
    same = torch.ones(4, 3)
    assert math.isclose(nt_xent(same, same, 0.5).item(), math.log(7), rel_tol=1e-5)


def test_nt_xent_stays_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    a, b = torch.randn(16, 8), torch.randn(16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = nt_xent(a, b, 0.1)
    assert inside.dtype == torch.float32
    assert torch.allclose(inside, nt_xent(a, b, 0.1), atol=1e-6)


def info_nce_reference(q, k, temperature, exclude=None):
    """Plain per-anchor loop: -log softmax over row i's allowed keys, at key i."""
    losses = []
    for i in range(len(q)):
        sims = []
        for j in range(len(k)):
            if exclude is not None and exclude[i, j]:
                continue
            sims.append(torch.nn.functional.cosine_similarity(q[i], k[j], dim=0) / temperature)
        positive = torch.nn.functional.cosine_similarity(q[i], k[i], dim=0) / temperature
        losses.append(-positive + torch.logsumexp(torch.stack(sims), dim=0))
    return torch.stack(losses).mean()


def test_info_nce_matches_reference_in_value_and_gradient():
    from selfsup.losses import info_nce

    torch.manual_seed(0)
    q = torch.randn(6, 5, requires_grad=True)
    k = torch.randn(6, 5, requires_grad=True)
    exclude = torch.zeros(6, 6, dtype=torch.bool)
    exclude[0, 3] = exclude[3, 0] = True
    for mask in (None, exclude):
        got = info_nce(q, k, 0.05, mask)
        want = info_nce_reference(q, k, 0.05, mask)
        assert torch.allclose(got, want, atol=1e-5)
        g_got = torch.autograd.grad(got, (q, k))
        g_want = torch.autograd.grad(want, (q, k))
        for a, b in zip(g_got, g_want, strict=True):
            assert torch.allclose(a, b, atol=1e-5)
