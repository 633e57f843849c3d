"""LARS against a plain restatement of its update; the warm-up + cosine schedule."""

import torch
from torch import nn

from selfsup.config import OptimConfig
from selfsup.optim import LARS, build_optimizer, lr_at, parameter_groups


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
