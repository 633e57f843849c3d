"""NNCLR: nearest neighbours and the loss against plain references, the support-set queue,
1-vs-2 gloo processes (same gradients, same support set on both ranks), resume, convergence."""

import pytest
import torch
from method_harness import (
    assert_resume_exact,
    assert_steps_match_one_process,
    digits_knn,
    run_two_processes_each_rank,
)

from selfsup.losses import nearest_neighbour
from selfsup.methods.nnclr import NNCLR, NNCLRConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8


def reference_nn(z, support):
    out = []
    for row in z:
        best = max(
            range(len(support)),
            key=lambda j: float((row.dot(support[j]) / (row.norm() * support[j].norm())).detach()),
        )
        out.append(support[best] / support[best].norm())
    return torch.stack(out)


def reference_nnclr_loss(nn1, nn2, p1, p2, t):
    """Paper eq. 3, symmetric: -log exp(nn_i.p_i/t) / sum_k exp(nn_i.p_k/t), cosines."""

    def one(nn, p):
        total = 0.0
        for i in range(len(nn)):
            sims = [
                torch.exp(torch.cosine_similarity(nn[i], p[k], dim=0) / t) for k in range(len(p))
            ]
            total = total - torch.log(sims[i] / sum(sims))
        return total / len(nn)

    return 0.5 * (one(nn1, p2) + one(nn2, p1))


def test_nearest_neighbour_matches_loop():
    g = torch.Generator().manual_seed(0)
    z, support = torch.randn(6, 5, generator=g), torch.randn(30, 5, generator=g)
    assert torch.allclose(nearest_neighbour(z, support), reference_nn(z, support), atol=1e-6)


def small_nnclr(**kw) -> NNCLR:
    torch.manual_seed(0)
    cfg = NNCLRConfig(
        **({"proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 16, "queue_size": 24} | kw)
    )
    return NNCLR(SPEC, cfg, augment=None)


def fixed_views():
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 16, 16, generator=g), torch.rand(BATCH, 3, 16, 16, generator=g)


def test_method_loss_matches_reference_values_gradients_and_enqueues_z1():
    method = small_nnclr()
    v1, v2 = fixed_views()
    support = method.support.rows.clone()
    loss, _ = method.loss([v1, v2], {})
    z1 = method.projector(method.encoder(v1))
    z2 = method.projector(method.encoder(v2))
    p1, p2 = method.predictor(z1), method.predictor(z2)
    want = reference_nnclr_loss(reference_nn(z1, support), reference_nn(z2, support), p1, p2, 0.1)
    assert torch.allclose(loss, want, atol=1e-5)
    params = [p for p in method.parameters() if p.requires_grad]
    g_got = torch.autograd.grad(loss, params)
    g_want = torch.autograd.grad(want, params)
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert int(method.support.pointer) == BATCH
    assert torch.allclose(method.support.rows[:BATCH], z1 / z1.norm(dim=1, keepdim=True), atol=1e-5)
    assert torch.equal(method.support.rows[BATCH:], support[BATCH:])


def make_method() -> NNCLR:
    return small_nnclr()


def half_views(rank: int):
    v1, v2 = fixed_views()
    h = BATCH // 2
    return [v1[rank * h : (rank + 1) * h], v2[rank * h : (rank + 1) * h]], {}


def support_state(method: NNCLR) -> dict[str, torch.Tensor]:
    return {"support": method.support.rows, "support_ptr": method.support.pointer}


def reference():
    """One process: each half through the network alone (BatchNorm as on its rank), the loss
    over the whole batch, then the whole batch's z1 enqueued."""
    method = make_method()
    v1, v2 = fixed_views()
    h = BATCH // 2

    def halves(v):
        z = torch.cat([method.projector(method.encoder(part)) for part in (v[:h], v[h:])])
        p = torch.cat([method.predictor(z[:h]), method.predictor(z[h:])])
        return z, p

    (z1, p1), (z2, p2) = halves(v1), halves(v2)
    support = method.support.rows.clone()
    loss = reference_nnclr_loss(reference_nn(z1, support), reference_nn(z2, support), p1, p2, 0.1)
    loss.backward()
    new_support = support.clone()
    new_support[:BATCH] = z1.detach() / z1.detach().norm(dim=1, keepdim=True)
    return {n: p.grad.clone() for n, p in method.named_parameters()}, new_support


def nnclr_for_steps() -> NNCLR:
    return small_nnclr(queue_size=12)  # 8 rows a step: the support set wraps


def views_at(step: int):
    g = torch.Generator().manual_seed(60 + step)
    return [torch.rand(BATCH, 3, 16, 16, generator=g) for _ in range(2)], {}


@pytest.mark.timeout(180)
def test_support_set_over_steps_on_two_processes_matches_one_process():
    """Several steps, the neighbours drawn from a support set filled by earlier steps: each
    rank's support set and gradients equal one process's on the whole batch."""
    assert_steps_match_one_process(nnclr_for_steps, views_at, support_state, steps=3)


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients_and_support_set():
    results = run_two_processes_each_rank(make_method, half_views, support_state)
    grads, support = reference()
    for got, state in results:  # DDP averages: both ranks hold the same gradients
        assert got.keys() == grads.keys()
        for name, g in grads.items():
            assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name
        assert int(state["support_ptr"]) == BATCH
        assert torch.allclose(state["support"], support, atol=1e-5)


SMALL = {
    "method.name": "nnclr",
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
    "method.pred_hidden_dim": 64,
    "method.queue_size": 1024,
}


def test_resume_is_exact_and_restores_the_support_set(tmp_path, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, SMALL)
    assert state["support.rows"].shape == (1024, 32)
    assert int(state["support.pointer"]) == (2 * (1437 // 128) * 128) % 1024


@pytest.mark.slow
def test_nnclr_learns_on_digits(tmp_path):
    learned, random = digits_knn(tmp_path, SMALL)
    print(f"nnclr digits knn: learned {learned:.3f} random {random:.3f}")
    assert learned > random + 0.05
