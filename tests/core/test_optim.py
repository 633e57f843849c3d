"""LARS (plain and clipped) against a restatement of its update; the warm-up + cosine schedule;
per-group options."""

import dataclasses

import pytest
import torch
from torch import nn

from selfsup.config import LIBRARY_OPTIM, OptimConfig
from selfsup.optim import (
    LARS,
    OPTIM_FIELDS,
    build_optimizer,
    describe_optim,
    lars_clips,
    lr_at,
    resolve_optim,
    scaled_lr,
    set_lr,
)


def bias_and_norm_apart(model):
    """LARS groups as SimCLR makes them: weights, then 1-d tensors (biases, norms) plain."""
    weights = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": weights}, {"params": plain, "weight_decay": 0.0, "lars_adapt": False}]


def test_lars_matches_plain_update_and_skips_norms():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    opt = LARS(bias_and_norm_apart(model), lr=0.1, momentum=0.9, weight_decay=0.01, eta=0.02)
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
        bias_and_norm_apart(model), lr=lr, momentum=0.9, weight_decay=wd, eta=eta, clip_lr=clip
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
    set_lr(opt, lr, 0.5)
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
    cfg = LIBRARY_OPTIM
    assert cfg.name == "lars" and scaled_lr(cfg, 4096) == 6.4
    assert lars_clips(cfg, scaled_lr(cfg, 4096)) and not lars_clips(cfg, scaled_lr(cfg, 256))
    for relative, of_scheduled in _relative_steps(cfg, 4096).values():
        assert relative <= cfg.lars_eta * (1 + 1e-5)  # at most eta of the layer's norm
        assert of_scheduled <= 1 + 1e-5  # the layer's lr never exceeds the scheduled lr
    unclipped = _relative_steps(dataclasses.replace(cfg, lars_clip_lr=False), 4096)
    for relative, _ in unclipped.values():  # what clipping prevents: lr * eta = 0.128
        assert abs(relative - 6.4 * 0.02) < 1e-4


def _two_layers() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def _step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad()
    model(torch.randn(6, 4)).pow(2).sum().backward()
    opt.step()


def test_groups_split_into_decayed_and_plain_parts_carrying_options():
    model = _two_layers()
    groups = [
        {"params": [*model[0].parameters()], "lr_scale": 0.5, "weight_decay": 0.1},
        {"params": [*model[1].parameters(), *model[2].parameters()]},
        {"params": []},  # dropped
    ]
    opt = build_optimizer(groups, OptimConfig(name="sgd", lr=0.4, weight_decay=1e-3), 256)
    got = [(len(g["params"]), g["weight_decay"], g["lr_scale"], g["lr"]) for g in opt.param_groups]
    assert got == [(1, 0.1, 0.5, 0.2), (1, 0.0, 0.5, 0.2), (1, 1e-3, 1.0, 0.4), (3, 0.0, 1.0, 0.4)]
    opt = build_optimizer(groups[:2], OptimConfig(exclude_bias_and_norm=False), 256)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 4]
    assert [g["lars_adapt"] for g in opt.param_groups] == [True, True]
    with pytest.raises(ValueError, match="unknown parameter group option"):
        build_optimizer([{"params": model.parameters(), "lr_mult": 2}], OptimConfig(), 256)


def test_lr_scale_and_fixed_lr_follow_the_schedule_or_not():
    model = _two_layers()
    groups = [
        {"params": [*model[0].parameters()], "lr_scale": 0.1},
        {"params": [*model[2].parameters()], "fixed_lr": True, "lr_scale": 2.0},
        {"params": [*model[1].parameters()]},
    ]
    opt = build_optimizer(groups, OptimConfig(name="sgd", lr=0.4), 512)  # peak 0.8
    set_lr(opt, 0.3, 0.5)
    lrs = [round(g["lr"], 9) for g in opt.param_groups]
    assert lrs == [0.03, 0.03, 1.6, 1.6, 0.3]


@pytest.mark.parametrize("name", ["lars", "sgd", "adamw"])
def test_frozen_until_holds_a_group_still_then_releases_it(name):
    model = _two_layers()
    groups = [
        {"params": [*model[0].parameters(), *model[1].parameters()]},
        {"params": [*model[2].parameters()], "frozen_until": 0.25},
    ]
    cfg = OptimConfig(name=name, weight_decay=0.1)
    opt = build_optimizer(groups, cfg, 256)
    assert [g["lr"] for g in opt.param_groups[2:]] == [0.0, 0.0]
    head = [p.detach().clone() for p in model[2].parameters()]
    body = [p.detach().clone() for p in model[0].parameters()]
    for progress in (0.0, 0.1, 0.2):
        set_lr(opt, 0.4, progress)
        _step(model, opt)
    assert all(torch.equal(a, b) for a, b in zip(head, model[2].parameters(), strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(body, model[0].parameters(), strict=True))
    assert all(not opt.state[p] for p in model[2].parameters())  # no momentum or moments built up
    set_lr(opt, 0.4, 0.25)
    assert [g["lr"] for g in opt.param_groups[2:]] == [0.4, 0.4]
    _step(model, opt)
    assert not any(torch.equal(a, b) for a, b in zip(head, model[2].parameters(), strict=True))
    with pytest.raises(ValueError, match="needs the training progress"):
        set_lr(opt, 0.4)


@pytest.mark.parametrize("name", ["lars", "sgd", "adamw"])
def test_frozen_or_absent_parameters_are_never_updated(name):
    model = _two_layers()
    model[1].weight.requires_grad_(False)
    groups = [{"params": [*model[0].parameters(), model[1].weight, model[1].bias]}]  # not model[2]
    for opt in (
        build_optimizer(groups, OptimConfig(name=name, weight_decay=0.1), 256),
        build_optimizer(nn.Sequential(model[0], model[1]), OptimConfig(name=name), 256),
    ):
        kept = [
            model[1].weight.detach().clone(),
            *(p.detach().clone() for p in model[2].parameters()),
        ]
        moved = model[0].weight.detach().clone()
        set_lr(opt, 0.4, 0.5)
        _step(model, opt)
        now = [model[1].weight, *model[2].parameters()]
        assert all(torch.equal(a, b) for a, b in zip(kept, now, strict=True))
        assert not torch.equal(moved, model[0].weight)
        assert all(p is not model[1].weight for g in opt.param_groups for p in g["params"])


def test_optimizer_state_round_trip_keeps_group_options():
    model = _two_layers()
    groups = [
        {"params": [*model[0].parameters()], "lr_scale": 0.5, "frozen_until": 0.5},
        {"params": [*model[1].parameters(), *model[2].parameters()], "fixed_lr": True},
    ]
    opt = build_optimizer(groups, OptimConfig(), 256)
    set_lr(opt, 0.2, 0.6)
    _step(model, opt)
    again = build_optimizer(groups, OptimConfig(), 256)
    again.load_state_dict(opt.state_dict())
    set_lr(again, 0.1, 0.1)
    assert [g["lr"] for g in again.param_groups] == [0.0, 0.0, 0.4, 0.4]
    old = opt.state_dict()  # a checkpoint from before clip_lr and the group options
    for g in old["param_groups"]:
        for key in ("clip_lr", "lr_scale", "fixed_lr", "frozen_until", "frozen", "peak_lr"):
            g.pop(key)
    again.load_state_dict(old)
    assert all(g["clip_lr"] is False for g in again.param_groups)
    set_lr(again, 0.1)
    assert [g["lr"] for g in again.param_groups] == [0.1] * 4


# --- which optimiser a run trains with: the method's published one, the user's keys win -----

MAE_LIKE = {"name": "adamw", "lr": 1.5e-4, "weight_decay": 0.05, "betas": (0.9, 0.95)}


def test_the_method_setting_applies_when_the_user_sets_nothing():
    cfg, sources = resolve_optim(OptimConfig(), MAE_LIKE, "mae")
    assert (cfg.name, cfg.lr, cfg.weight_decay, cfg.betas) == ("adamw", 1.5e-4, 0.05, (0.9, 0.95))
    assert cfg.warmup == LIBRARY_OPTIM.warmup  # what the method leaves out: the library's
    assert all(getattr(cfg, f) is not None for f in OPTIM_FIELDS if f != "lars_clip_lr")
    assert sources["lr"] == "method" and sources["warmup"] == "library"


def test_the_users_keys_win_one_by_one():
    cfg, sources = resolve_optim(OptimConfig(lr=1e-3, name="adamw"), MAE_LIKE, "mae")
    assert (cfg.lr, cfg.weight_decay, cfg.betas) == (1e-3, 0.05, (0.9, 0.95))
    assert sources["lr"] == sources["name"] == "yours" and sources["weight_decay"] == "method"


def test_naming_another_optimiser_starts_from_the_library_setting():
    """MAE's AdamW lr 1.5e-4 would be no setting for LARS: the method's values go with it."""
    cfg, sources = resolve_optim(OptimConfig(name="lars"), MAE_LIKE, "mae")
    assert cfg == dataclasses.replace(LIBRARY_OPTIM, name="lars")
    assert "method" not in sources.values()


def test_a_method_without_a_setting_trains_with_the_library_one():
    cfg, sources = resolve_optim(OptimConfig(), {}, "triplet")
    assert cfg == LIBRARY_OPTIM and set(sources.values()) == {"library"}


def test_unknown_method_settings_are_a_bug_in_the_method():
    with pytest.raises(ValueError, match="lrr"):
        resolve_optim(OptimConfig(), {"lrr": 0.1}, "broken")


def test_adamw_gets_its_betas():
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, dataclasses.replace(LIBRARY_OPTIM, **MAE_LIKE), 256)
    assert isinstance(opt, torch.optim.AdamW)
    assert all(
        g["betas"] == (0.9, 0.95) and g["weight_decay"] in (0.05, 0.0) for g in opt.param_groups
    )


def test_the_startup_line_says_optimiser_lr_schedule_and_sources():
    cfg, sources = resolve_optim(OptimConfig(weight_decay=0.1), MAE_LIKE, "mae")
    line = describe_optim(cfg, 128, sources, "mae", "MAE, ImageNet")
    assert line.startswith("optimiser: adamw, lr 0.00015 per 256 samples = 7.5e-05 at batch 128")
    assert "weight decay 0.1" in line and "betas (0.9, 0.95)" in line
    assert "linear warm-up over 5 % of training, then cosine to 0 % of the peak" in line
    assert "mae's published setting: MAE, ImageNet (name, lr, betas)" in line
    assert "your optim.* keys (weight_decay)" in line


def test_the_startup_line_says_constant_for_a_constant_lr():
    """A schedule that ends at 100 % of the peak is a constant lr (the GANs', VQ-VAE's), not a
    cosine: the line says so."""
    flat = {"name": "adamw", "lr": 4e-4, "warmup": 0.0, "final_lr_fraction": 1.0}
    cfg, sources = resolve_optim(OptimConfig(), flat, "gan")
    line = describe_optim(cfg, 128, sources, "gan")
    assert "; constant lr." in line and "cosine" not in line
    warm = dataclasses.replace(cfg, warmup=0.1)
    assert "linear warm-up over 10 % of training, then constant" in describe_optim(warm, 128)


def test_a_run_trains_with_the_methods_optimiser_prints_it_and_saves_it(tmp_path, capsys):
    """SimSiam with no optim.* keys trains with its CIFAR SGD; the start-up line says so, and
    config.json holds the resolved optimiser (what resume and compare read)."""
    import json

    import selfsup

    small = {
        "method.name": "simsiam",
        "method.proj_hidden_dim": 32,
        "method.proj_dim": 32,
        "method.pred_hidden_dim": 16,
        "train.epochs": 1,
        "train.batch_size": 128,
        "train.progress": False,
        "train.report": False,
        "eval.protocols": "",
        "optim.weight_decay": 1e-4,
    }
    selfsup.pretrain(selfsup.make_config(**small), tmp_path / "run")
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("optimiser: "))
    assert "sgd, lr 0.03 per 256 samples = 0.015 at batch 128" in line
    assert "simsiam's published setting" in line and "your optim.* keys (weight_decay)" in line
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["optim"]
    assert (saved["name"], saved["lr"], saved["weight_decay"]) == ("sgd", 0.03, 1e-4)
    assert all(v is not None for k, v in saved.items() if k != "lars_clip_lr")
    selfsup.pretrain(out=tmp_path / "run", resume=True, train__epochs=2)
    resumed = capsys.readouterr().out
    assert "sgd, lr 0.03 per 256" in resumed and "as saved in the run's config.json" in resumed
