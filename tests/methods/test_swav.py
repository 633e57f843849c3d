"""SwAV: Sinkhorn-Knopp against a plain loop (and its marginals), the swapped-prediction loss
against a plain loop, the queue, the frozen prototypes, Sinkhorn over the global batch under two
gloo processes, exact resume and convergence on digits."""

import pytest
import torch
from method_harness import (
    assert_gradients_close,
    assert_resume_exact,
    assert_steps_match_one_process,
    digits_knn,
    run_two_processes,
)

from selfsup.losses import sinkhorn_knopp, swav_loss
from selfsup.methods.swav import SwAV, SwAVConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
SMALL = dict(prototypes=10, proj_hidden_dim=16, proj_dim=8, local_crops=1, queue_length=0)
BATCH = 8


def reference_sinkhorn(scores, epsilon, iterations):
    """Algorithm 1 of the paper with explicit loops over prototypes and samples."""
    b, k = scores.shape
    q = [[float(torch.exp(scores[i, j] / epsilon)) for i in range(b)] for j in range(k)]
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(iterations):
        for j in range(k):
            s = sum(q[j])
            q[j] = [v / s / k for v in q[j]]
        for i in range(b):
            s = sum(q[j][i] for j in range(k))
            for j in range(k):
                q[j][i] = q[j][i] / s / b
    return torch.tensor([[q[j][i] * b for j in range(k)] for i in range(b)], dtype=torch.float64)


def test_sinkhorn_matches_plain_loops_and_marginals():
    g = torch.Generator().manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=1)
    got = sinkhorn_knopp(scores, 0.5, 3)
    want = reference_sinkhorn(scores.double(), 0.5, 3)
    assert torch.allclose(got.double(), want, atol=1e-6)
    assert torch.allclose(got.sum(1), torch.ones(6), atol=1e-5)  # each sample: a distribution
    # Many iterations reach equipartition: each prototype gets B / K of the mass.
    many = sinkhorn_knopp(scores, 0.5, 200)
    assert torch.allclose(many.sum(0), torch.full((4,), 6 / 4), atol=1e-3)
    # epsilon 0.01: exp(scores / epsilon) overflows float32; the codes stay finite and the same
    assert torch.isinf(torch.exp(scores / 0.01)).any()
    small_eps = sinkhorn_knopp(scores, 0.01, 3)
    assert torch.allclose(small_eps.double(), reference_sinkhorn(scores.double(), 0.01, 3))


def reference_swav(scores, codes, t):
    total, pairs = 0.0, 0
    for i, q in enumerate(codes):
        for v, s in enumerate(scores):
            if v == i:
                continue
            rows = []
            for b in range(s.shape[0]):
                log_p = s[b] / t - torch.log(torch.exp(s[b] / t).sum())
                rows.append(-(q[b] * log_p).sum())
            total = total + torch.stack(rows).mean()
            pairs += 1
    return total / pairs


def test_swav_loss_matches_plain_loops_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    scores = [torch.randn(5, 6, generator=g, requires_grad=True) for _ in range(3)]
    codes = [torch.softmax(torch.randn(5, 6, generator=g), 1) for _ in range(2)]
    got, want = swav_loss(scores, codes, 0.1), reference_swav(scores, codes, 0.1)
    assert torch.allclose(got, want, atol=1e-5)
    for a, b in zip(
        torch.autograd.grad(got, scores), torch.autograd.grad(want, scores), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5)


def small_method(**over) -> SwAV:
    torch.manual_seed(0)
    return SwAV(SPEC, SwAVConfig(**(SMALL | over)), augment=None)


def test_defaults_are_the_cifar_recipe_that_learns():
    """3000 prototypes and a queue of 3840 as the paper's batch-256 run and solo-learn's CIFAR
    SwAV; epsilon 0.03 (the SwAV README's remedy for a loss stuck at ln K) and the queue from
    epoch 15 reached: both measured on CIFAR-10 (docs/methods-clustering.md)."""
    cfg = SwAVConfig()
    assert (cfg.prototypes, cfg.epsilon, cfg.queue_length) == (3000, 0.03, 3840)
    assert cfg.queue_start_epochs == 15.0 and cfg.local_crops is None
    assert SwAV.make_config({"preset": "imagenet"}).epsilon == 0.05


def test_queue_fills_then_is_used_after_the_epochs_it_waits_for():
    method = small_method(queue_length=8, queue_start_epochs=1.0)
    method.bind_data(8)  # a training set of 8: each batch of 4 is half an epoch
    views = [torch.rand(4, 3, 16, 16) for _ in range(3)]
    _, fig = method.loss(views, {})
    assert fig["queue_used"] == 0 and int(method.queue[0].filled) == 4
    assert method.epochs_reached() == 0.5
    z = method._embed(views)
    assert torch.allclose(method.queue[0].newest_first()[:4], z[0].detach(), atol=1e-6)
    other = [torch.rand(4, 3, 16, 16) for _ in range(3)]
    _, fig = method.loss(other, {})
    assert fig["queue_used"] == 0  # full only now, and half an epoch trained before this step
    assert int(method.queue[0].filled) == 8
    assert torch.allclose(
        method.queue[0].newest_first()[4:], z[0].detach(), atol=1e-6
    )  # shifted along
    _, fig = method.loss(views, {})
    assert fig["queue_used"] == 1  # one epoch reached, the queue full
    # With the queue, the codes differ from those of the batch alone.
    scores = method.prototypes(method._embed(views)[0])
    with_queue = method.codes(scores, 0)
    alone = sinkhorn_knopp(scores.detach(), method.cfg.epsilon, 3)
    assert with_queue.shape == alone.shape and not torch.allclose(with_queue, alone)


def test_prototype_freeze_is_a_fraction_of_progress_whatever_drives_the_run():
    """Given as a fraction of training, it means the same under train.epochs and
    train.time_budget; no epoch count is needed."""
    method = small_method(freeze_prototypes=0.25)
    assert [g.get("frozen_until", 0.0) for g in method.param_groups()] == [0.0, 0.25]
    assert not hasattr(method, "train_epochs")


def test_prototypes_frozen_in_first_quarter_and_normalised():
    from selfsup.config import OptimConfig
    from selfsup.optim import build_optimizer, set_lr

    method = small_method(freeze_prototypes=0.25)
    optimizer = build_optimizer(method.param_groups(), OptimConfig(name="sgd", lr=1.0), 256)
    views = [torch.rand(4, 3, 16, 16) for _ in range(3)]
    w = method.prototypes.weight

    def step(progress):
        set_lr(optimizer, 0.5, progress)
        optimizer.zero_grad()
        method.loss(views, {})[0].backward()
        before = w.detach().clone()
        optimizer.step()
        moved = not torch.equal(before, w.detach())
        method.after_step(progress)
        return moved

    assert not step(0.1)
    assert step(0.3)
    assert torch.allclose(w.norm(dim=1), torch.ones(10), atol=1e-6)


# --- two gloo processes: Sinkhorn over the global batch gives one process's gradients -------


def make_method() -> SwAV:
    return small_method()


def fixed_views():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(BATCH, 3, 16, 16, generator=g) for _ in range(3)]


def half_views(rank: int):
    h = BATCH // 2
    return [v[rank * h : (rank + 1) * h] for v in fixed_views()], {}


def reference_gradients():
    method = make_method()
    h = BATCH // 2
    parts = [
        method._embed([v[:h] for v in fixed_views()]),
        method._embed([v[h:] for v in fixed_views()]),
    ]
    z = [torch.cat([p[v] for p in parts]) for v in range(3)]
    scores = [method.prototypes(zv) for zv in z]
    codes = [sinkhorn_knopp(scores[v].detach(), method.cfg.epsilon, 3) for v in range(2)]
    swav_loss(scores, codes, 0.1).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters()}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_method, half_views)
    expected = reference_gradients()
    assert_gradients_close(grads, expected)


def swav_with_queue() -> SwAV:
    return small_method(queue_length=BATCH, queue_start_epochs=0.0)


def batch_at(step: int):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.rand(BATCH, 3, 16, 16, generator=g) for _ in range(3)], {}


def queue_state(method: SwAV) -> dict[str, torch.Tensor]:
    return {
        "queue": torch.stack([q.newest_first() for q in method.queue]),
        "queue_filled": method.queue[0].filled,
    }


@pytest.mark.timeout(180)
def test_queue_in_use_over_steps_on_two_processes_matches_one_process():
    """The queue holds the global batch's projections and is the same on every rank: with it
    in use (steps 2 and 3), codes, gradients and queue equal one process's on the whole batch.
    A queue kept per rank and broadcast by DDP from rank 0 made Sinkhorn see rank 0's past
    features twice and rank 1's never."""
    method = swav_with_queue()
    for step in range(2):
        method.loss(*batch_at(step))
        method.after_step((step + 1) / 3)
    assert method.use_queue()  # the comparison below covers steps with the queue in use
    assert_steps_match_one_process(swav_with_queue, batch_at, queue_state, steps=3)


def test_resume_exact_restores_queue(tmp_path, monkeypatch):
    state = assert_resume_exact(
        tmp_path,
        monkeypatch,
        {
            "method.name": "swav",
            "method.prototypes": 16,
            "method.proj_hidden_dim": 32,
            "method.proj_dim": 16,
            "method.local_crops": 0,
            "method.queue_length": 256,
            "method.queue_start_epochs": 1.0,
        },
    )
    assert int(state["queue.0.filled"]) == 256 and state["queue.1.rows"].abs().sum() > 0
    assert float(state["samples_seen"]) == 2 * (1437 // 128) * 128  # the epochs reached


@pytest.mark.slow
def test_swav_learns_digits(tmp_path):
    learned, random = digits_knn(
        tmp_path,
        {
            "method.name": "swav",
            "method.prototypes": 30,
            "method.proj_hidden_dim": 256,
            "method.proj_dim": 64,
            "method.queue_length": 512,
            "optim.name": "adamw",
            "optim.lr": 1e-3,
            "optim.weight_decay": 1e-5,
        },
    )
    print(f"swav digits kNN: learned {learned:.3f} random {random:.3f}")
    assert learned > random + 0.05
