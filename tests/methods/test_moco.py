"""MoCo v1/v2: the queue loss against a plain reference, the ring-buffer queue, the enqueue
order of the symmetric loss, split-batch BN, 1-vs-2 gloo processes (gradients and queue),
exact resume and convergence on digits."""

import pytest
import torch
import torch.nn.functional as F
from method_harness import (
    assert_resume_exact,
    assert_steps_match_one_process,
    digits_knn,
    run_two_processes_each_rank,
)

from selfsup.errors import SelfsupError
from selfsup.losses import moco_infonce
from selfsup.methods.moco import MoCo, MoCoConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8


def reference_moco_loss(q, k, queue, t):
    total = 0.0
    for i in range(len(q)):
        qi = q[i] / q[i].norm()
        ki = k[i] / k[i].norm()
        pos = torch.exp(qi.dot(ki) / t)
        neg = sum(torch.exp(qi.dot(c / c.norm()) / t) for c in queue)
        total = total - torch.log(pos / (pos + neg))
    return total / len(q)


def test_moco_infonce_matches_reference_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(5, 4, generator=g, requires_grad=True)
    k = torch.randn(5, 4, generator=g, requires_grad=True)
    queue = torch.randn(7, 4, generator=g)
    got = moco_infonce(q, k, queue, 0.2)
    want = reference_moco_loss(q, k, queue, 0.2)
    assert torch.allclose(got, want, atol=1e-5)
    g_got = torch.autograd.grad(got, [q, k])
    g_want = torch.autograd.grad(want, [q, k])
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError):
        moco_infonce(q, k, torch.randn(7, 3), 0.2)


def small_moco(**kw) -> MoCo:
    torch.manual_seed(0)
    cfg = MoCoConfig(**({"proj_hidden_dim": 16, "proj_dim": 8, "queue_size": 20} | kw))
    return MoCo(SPEC, cfg, augment=None)


def test_symmetric_loss_uses_the_old_queue_for_both_views_then_enqueues_both():
    method = small_moco(symmetric=True, shuffle_bn=False)
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g)
    old = method.queue.rows.clone()
    loss, _ = method.loss([v1, v2], {})
    with torch.no_grad():
        q1 = method.head(method.encoder(v1))
        q2 = method.head(method.encoder(v2))
        k1 = F.normalize(method.key_head(method.key_encoder(v1)), dim=1)
        k2 = F.normalize(method.key_head(method.key_encoder(v2)), dim=1)
    want = 0.5 * (moco_infonce(q1, k2, old, 0.2) + moco_infonce(q2, k1, old, 0.2))
    assert torch.allclose(loss, want, atol=1e-5)
    assert int(method.queue.pointer) == 8
    assert torch.allclose(method.queue.rows[:4], k2, atol=1e-6)
    assert torch.allclose(method.queue.rows[4:8], k1, atol=1e-6)
    assert torch.equal(method.queue.rows[8:], old[8:])
    loss.backward()  # the enqueue did not break the graph
    assert method.encoder.parameters().__next__().grad is not None
    assert all(p.grad is None for p in method.key_encoder.parameters())


def test_split_batch_bn_runs_shuffled_sub_batches_separately():
    method = small_moco(bn_splits=2)
    x = torch.rand(BATCH, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)
    keys = method.keys(x)
    torch.manual_seed(5)
    perm = torch.randperm(BATCH)
    with torch.no_grad():
        parts = [method.key_head(method.key_encoder(x[p])) for p in perm.chunk(2)]
    want = torch.empty(BATCH, 8)
    want[perm] = F.normalize(torch.cat(parts), dim=1)
    assert torch.allclose(keys, want, atol=1e-5)
    # Not the same as one batch: the BN statistics differ (what stops the shortcut).
    with torch.no_grad():
        whole = F.normalize(method.key_head(method.key_encoder(x)), dim=1)
    assert not torch.allclose(keys, whole, atol=1e-3)


def test_version_1_and_presets():
    assert MoCo.make_config({"version": 1}).temperature == 0.07
    assert MoCo.make_config({}).temperature == 0.2
    big = MoCo.make_config({"preset": "imagenet"})
    assert big.queue_size == 65536 and big.momentum == 0.999
    with pytest.raises(SelfsupError):
        MoCo.make_config({"version": 3})
    assert isinstance(small_moco(version=1).head, torch.nn.Linear)


# --- 1 vs 2 gloo processes: same gradients, same queue on both ranks -------------------------


def make_method() -> MoCo:
    return small_moco(bn_splits=2)


def fixed_views():
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 16, 16, generator=g), torch.rand(BATCH, 3, 16, 16, generator=g)


def half_views(rank: int):
    v1, v2 = fixed_views()
    h = BATCH // 2
    torch.manual_seed(7)  # the shuffle permutation is drawn on rank 0 and broadcast
    return [v1[rank * h : (rank + 1) * h], v2[rank * h : (rank + 1) * h]], {}


def queue_state(method: MoCo) -> dict[str, torch.Tensor]:
    return {"queue": method.queue.rows, "queue_ptr": method.queue.pointer}


def reference():
    method = make_method()
    v1, v2 = fixed_views()
    h = BATCH // 2
    q = torch.cat([method.head(method.encoder(v1[:h])), method.head(method.encoder(v1[h:]))])
    torch.manual_seed(7)
    k = method.keys(v2)  # one process: split BN over 2 sub-batches with the same permutation
    old = method.queue.rows.clone()
    moco_infonce(q, k, old, method.cfg.temperature).backward()
    method.queue.push(k)
    grads = {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}
    return grads, method.queue.rows


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients_and_queue():
    results = run_two_processes_each_rank(make_method, half_views, queue_state)
    grads, queue = reference()
    got = results[0][0]
    assert got.keys() == grads.keys() and len(grads) > 0
    for name, g in grads.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name
    for _, state in results:
        assert int(state["queue_ptr"]) == BATCH
        assert torch.allclose(state["queue"], queue, atol=1e-5)


def moco_for_steps() -> MoCo:
    return small_moco(bn_splits=2, queue_size=12)  # 8 keys a step: the queue wraps


def views_at(step: int):
    g = torch.Generator().manual_seed(50 + step)
    return [torch.rand(BATCH, 3, 16, 16, generator=g) for _ in range(2)], {}


@pytest.mark.timeout(180)
def test_queue_over_steps_on_two_processes_matches_one_process():
    """Several steps with the queue in use (and wrapping): each rank's queue, pointer and
    gradients equal one process's on the whole batch."""
    assert_steps_match_one_process(moco_for_steps, views_at, queue_state, steps=3)


# --- runs on digits -----------------------------------------------------------------------

SMALL = {
    "method.name": "moco",
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
    "method.queue_size": 512,
}


def test_resume_is_exact_and_restores_the_queue(tmp_path, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, SMALL)
    assert "queue.rows" in state and "queue.pointer" in state
    assert int(state["queue.pointer"]) == (2 * (1437 // 128) * 128) % 512


@pytest.mark.slow
def test_moco_learns_on_digits(tmp_path):
    learned, random = digits_knn(tmp_path, SMALL)
    print(f"moco digits knn: learned {learned:.3f} random {random:.3f}")
    assert learned > random + 0.05
