"""The metric losses against plain loop references: values and gradients."""

import math

import pytest
import torch

from selfsup.losses import block_contrastive, contrastive_margin, npair, supcon, triplet

N, D = 6, 5


def inputs(seed: int = 0, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, D, generator=g, dtype=torch.float64).requires_grad_()
    z2 = torch.randn(n, D, generator=g, dtype=torch.float64).requires_grad_()
    return z1, z2


def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).sum().sqrt()


def assert_same(fn, ref, *tensors: torch.Tensor) -> None:
    """Equal values and equal gradients with respect to every input tensor."""
    a, b = fn(), ref()
    assert torch.allclose(a.double(), b, atol=1e-6), (a, b)
    ga = torch.autograd.grad(a, tensors)
    gb = torch.autograd.grad(b, tensors)
    for x, y in zip(ga, gb, strict=True):
        assert torch.allclose(x.double(), y, atol=1e-5), (x, y)


def pool(z1, z2):
    u = [*z1, *z2]
    return u, (lambda i: (i + len(z1)) % (2 * len(z1))), (lambda i: i % len(z1))


@pytest.mark.parametrize("margin", [0.5, 3.0])
def test_contrastive_margin_matches_loops(margin):
    z1, z2 = inputs()

    def ref():
        u, p, sample = pool(z1, z2)
        pos, neg = [], []
        for i in range(len(u)):
            for j in range(len(u)):
                if i == j:
                    continue
                d = dist(u[i], u[j])
                if j == p(i):
                    pos.append(d**2 / 2)
                else:
                    assert sample(i) != sample(j)
                    neg.append(torch.clamp(margin - d, min=0) ** 2 / 2)
        return sum(pos) / len(pos) + sum(neg) / len(neg)

    assert_same(lambda: contrastive_margin(z1, z2, margin), ref, z1, z2)


def test_contrastive_margin_pushes_only_within_margin():
    z1 = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    assert contrastive_margin(z1, z1.clone(), margin=1.0).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("margin", [0.2, 5.0])
def test_triplet_hardest_matches_loops(margin):
    z1, z2 = inputs(1)

    def ref():
        u, p, sample = pool(z1, z2)
        terms = []
        for i in range(len(u)):
            d_pos = dist(u[i], u[p(i)]) ** 2
            d_neg = min(dist(u[i], u[j]) ** 2 for j in range(len(u)) if sample(j) != sample(i))
            terms.append(torch.clamp(d_pos - d_neg + margin, min=0))
        return sum(terms) / len(terms)

    assert_same(lambda: triplet(z1, z2, margin, "hardest"), ref, z1, z2)


@pytest.mark.parametrize("margin", [0.2, 5.0])
def test_triplet_semi_hard_matches_loops_and_is_the_default(margin):
    """FaceNet sec. 3.2 (and TF's triplet_semihard_loss): the negative of anchor i is the
    closest one farther than its positive; where none is farther, the farthest negative."""
    z1, z2 = inputs(4)

    def ref():
        u, p, sample = pool(z1, z2)
        terms = []
        for i in range(len(u)):
            d_pos = dist(u[i], u[p(i)]) ** 2
            negs = [dist(u[i], u[j]) ** 2 for j in range(len(u)) if sample(j) != sample(i)]
            outside = [d for d in negs if d > d_pos]
            d_neg = min(outside) if outside else max(negs)
            terms.append(torch.clamp(d_pos - d_neg + margin, min=0))
        return sum(terms) / len(terms)

    assert_same(lambda: triplet(z1, z2, margin, "semi-hard"), ref, z1, z2)
    assert_same(lambda: triplet(z1, z2, margin), ref, z1, z2)


def test_triplet_semi_hard_uses_the_farthest_negative_when_none_is_outside():
    # Sample 0's views are far apart and every other sample sits between them: no negative
    # is farther from anchor 0 than its positive, so the farthest one is used.
    z1 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    z2 = torch.tensor([[10.0, 0.0], [1.0, 0.1], [2.0, 0.1]])
    loss_semi = triplet(z1, z2, 0.0, "semi-hard")
    loss_hard = triplet(z1, z2, 0.0, "hardest")
    assert loss_semi < loss_hard  # hardest picks the closest negative (distance 1)


def test_triplet_given_negatives_matches_loops():
    z1, z2 = inputs(2)
    chosen = torch.tensor([1, 8, 4, 0, 11, 3, 2, 9, 10, 6, 1, 7])

    def ref():
        u, p, _ = pool(z1, z2)
        terms = [
            torch.clamp(dist(u[i], u[p(i)]) ** 2 - dist(u[i], u[chosen[i]]) ** 2 + 0.3, min=0)
            for i in range(len(u))
        ]
        return sum(terms) / len(terms)

    assert_same(lambda: triplet(z1, z2, 0.3, chosen), ref, z1, z2)
    bad = chosen.clone()
    bad[0] = 6  # row 6 is the other view of sample 0: not a negative
    with pytest.raises(ValueError, match="own sample"):
        triplet(z1, z2, 0.3, bad)


def test_npair_matches_loops():
    z1, z2 = inputs(3)

    def ref():
        terms, reg = [], []
        for i in range(N):
            s = sum(torch.exp(z1[i] @ z2[j] - z1[i] @ z2[i]) for j in range(N) if j != i)
            terms.append(torch.log(1 + s))
            reg.append((z1[i] ** 2).sum() + (z2[i] ** 2).sum())
        # TF's npairs_loss (the reference implementation): 0.25 * reg_lambda * (mean ||a||^2
        # + mean ||p||^2)
        return sum(terms) / N + 0.25 * 0.01 * sum(reg) / N

    assert_same(lambda: npair(z1, z2, 0.01), ref, z1, z2)


def test_supcon_matches_loops_and_skips_anchors_without_positives():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(9, D, generator=g, dtype=torch.float64).requires_grad_()
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3, 2, 1])  # label 3 occurs once

    def ref():
        u = [v / v.norm() for v in z]
        terms = []
        for i in range(len(u)):
            positives = [p for p in range(len(u)) if p != i and labels[p] == labels[i]]
            if not positives:
                continue
            denom = sum(torch.exp(u[i] @ u[a] / 0.1) for a in range(len(u)) if a != i)
            terms.append(
                -sum(torch.log(torch.exp(u[i] @ u[p] / 0.1) / denom) for p in positives)
                / len(positives)
            )
        return sum(terms) / len(terms)

    assert_same(lambda: supcon(z, labels, 0.1), ref, z)
    # no anchor with a positive: 0 and no gradient, not NaN
    lone = z[:3].detach().requires_grad_()
    value = supcon(lone, torch.tensor([0, 1, 2]))
    assert value.item() == 0.0
    (grad,) = torch.autograd.grad(value, lone)
    assert torch.count_nonzero(grad) == 0


def test_supcon_with_one_class_per_sample_is_nt_xent():
    from selfsup.losses import nt_xent

    z1, z2 = inputs(5)
    labels = torch.arange(N).repeat(2)
    a = supcon(torch.cat([z1, z2]), labels, 0.2)
    assert torch.allclose(a, nt_xent(z1, z2, 0.2))


def test_block_contrastive_matches_loops():
    g = torch.Generator().manual_seed(6)
    a = torch.randn(N, D, generator=g, dtype=torch.float64).requires_grad_()
    pos = torch.randn(N, 3, D, generator=g, dtype=torch.float64).requires_grad_()
    neg = torch.randn(N, 3, D, generator=g, dtype=torch.float64).requires_grad_()

    def ref():
        total = 0
        for i in range(N):
            p = sum(pos[i, k] for k in range(3)) / 3
            q = sum(neg[i, k] for k in range(3)) / 3
            total = total + torch.log(1 + torch.exp(-(a[i] @ p - a[i] @ q) / 0.5))
        return total / N

    assert_same(lambda: block_contrastive(a, pos, neg, 0.5), ref, a, pos, neg)
    # block size 1, temperature 1: the paper's plain logistic loss on one triple
    one = block_contrastive(a[:1], pos[:1, :1], neg[:1, :1]).item()
    s = (a[0] @ (pos[0, 0] - neg[0, 0])).item()
    assert one == pytest.approx(math.log1p(math.exp(-s)))


@pytest.mark.parametrize(
    "call",
    [
        lambda: contrastive_margin(torch.zeros(4, 3), torch.zeros(5, 3)),
        lambda: triplet(torch.zeros(1, 3), torch.zeros(1, 3)),
        lambda: npair(torch.zeros(4, 3), torch.zeros(4, 2)),
        lambda: supcon(torch.zeros(4, 3), torch.zeros(3)),
        lambda: block_contrastive(torch.zeros(4, 3), torch.zeros(4, 2, 3), torch.zeros(3, 2, 3)),
    ],
)
def test_bad_shapes_are_named(call):
    with pytest.raises(ValueError, match="expects"):
        call()
