"""LARS (plain and clipped) against a restatement of its update; the warm-up + cosine schedule;
per-group options."""

import torch
from torch import nn

from selfsup.config import OptimConfig
from selfsup.optim import LARS, build_optimizer, lr_at, parameter_groups, scaled_lr, set_lr


def test_lars_matches_plain_update_and_skips_norms():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    opt = LARS(parameter_groups(model, True), lr=0.1, momentum=0.9, weight_decay=0.01, eta=0.02)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers: dict[str, torch.Tensor] = {}
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        opt.step()
        for n, p in before.items():
            if p.ndim > 1:
                d = grads[n] + 0.01 * p
                d = d * (0.02 * p.norm() / d.norm())
            else:
                d = grads[n]
            buffers[n] = d if n not in buffers else 0.9 * buffers[n] + d
            before[n] = p - 0.1 * buffers[n]
    for n, p in model.named_parameters():
        assert torch.allclose(p, before[n], atol=1e-6), n


def test_lars_step_builds_no_graph():
    w = nn.Parameter(torch.randn(3, 3))
    opt = LARS([w], lr=0.1)
    (w * 2).sum().backward()
    opt.step()
    assert w.grad_fn is None and not opt.state[w]["momentum_buffer"].requires_grad


def test_schedule_warms_up_then_decays_to_final():
    cfg = OptimConfig(warmup=0.1, final_lr_fraction=0.0)
    assert lr_at(0.0, cfg, 1.0) == 0.0
    assert abs(lr_at(0.05, cfg, 1.0) - 0.5) < 1e-9
    assert abs(lr_at(0.1, cfg, 1.0) - 1.0) < 1e-9
    assert abs(lr_at(0.55, cfg, 1.0) - 0.5) < 1e-9
    assert lr_at(1.0, cfg, 1.0) < 1e-12


def test_build_optimizer_scales_lr_with_batch():
    model = nn.Linear(3, 3)
    for name, kind in [("lars", LARS), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)]:
        opt = build_optimizer(model, OptimConfig(name=name, lr=0.4), global_batch=512)
        assert isinstance(opt, kind)
        assert opt.param_groups[0]["lr"] == 0.8


def _lars_restated(model, lr, eta, wd, clip, steps, seed):
    """Run LARS on `model` and the update restated by hand; return which branches clipping took."""
    torch.manual_seed(seed)
    opt = LARS(
        parameter_groups(model, True), lr=lr, momentum=0.9, weight_decay=wd, eta=eta, clip_lr=clip
    )
    expected = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers: dict[str, torch.Tensor] = {}
    clipped = set()
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        opt.step()
        for n, p in expected.items():
            if p.ndim > 1:
                d = grads[n] + wd * p
                trust = eta * p.norm() / d.norm()
                if clip:
                    clipped.add(bool(trust / lr >= 1))
                    trust = min(trust / lr, 1.0)
                d = d * trust
            else:
                d = grads[n]
            buffers[n] = d if n not in buffers else 0.9 * buffers[n] + d
            expected[n] = p - lr * buffers[n]
    for n, p in model.named_parameters():
        assert torch.allclose(p, expected[n], atol=1e-6), n
    return clipped


def test_lars_clip_lr_matches_plain_update():
    seen = set()
    for lr in (0.01, 0.5, 20.0):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        seen |= _lars_restated(model, lr=lr, eta=0.02, wd=0.01, clip=True, steps=3, seed=1)
    assert seen == {True, False}  # both the clipped and the adaptive branch were checked


def _relative_steps(cfg: OptimConfig, batch: int) -> dict[str, tuple[float, float]]:
    """One step at the peak lr of `batch`: per weight, (|step| / |w|, |step| / (lr * |d|))."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(64, 10))
    opt = build_optimizer(model, cfg, batch)
    lr = scaled_lr(cfg, batch)
    set_lr(opt, lr)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.ndim > 1}
    model(torch.randn(8, 3, 4, 4)).logsumexp(1).sum().backward()
    d = {n: p.grad + cfg.weight_decay * p.detach() for n, p in model.named_parameters()}
    opt.step()
    out = {}
    for n, p in model.named_parameters():
        if n in before:
            step = (p.detach() - before[n]).norm()
            out[n] = (float(step / before[n].norm()), float(step / (lr * d[n].norm())))
    return out


def test_default_lars_step_is_bounded_at_large_batch():
    cfg = OptimConfig()
    assert cfg.name == "lars" and cfg.lars_clip_lr and scaled_lr(cfg, 4096) == 6.4
    for relative, of_scheduled in _relative_steps(cfg, 4096).values():
        assert relative <= cfg.lars_eta * (1 + 1e-5)  # at most eta of the layer's norm
        assert of_scheduled <= 1 + 1e-5  # the layer's lr never exceeds the scheduled lr
    unclipped = _relative_steps(OptimConfig(lars_clip_lr=False), 4096)
    for relative, _ in unclipped.values():  # what clipping prevents: lr * eta = 0.128
        assert abs(relative - 6.4 * 0.02) < 1e-4
