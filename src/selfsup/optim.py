"""Optimizers (SGD, LARS, AdamW), per-group options, and the warm-up + cosine lr schedule.

Methods hand the optimizer parameter groups, `[{"params": [...], **options}]`; the options are:

- `lr_scale` (float >= 0, default 1): the group's lr is the scheduled lr times this.
- `fixed_lr` (bool): the group keeps `peak lr * lr_scale` throughout, unscheduled (SimSiam's
  predictor).
- `frozen_until` (progress fraction in [0, 1)): before that point of training the group's lr is
  0 and its gradients are dropped before each step, so neither momentum, Adam moments nor weight
  decay touch it (DINO's last layer during the first epoch).
- `weight_decay` (float >= 0): replaces the config's weight decay for the group.
- `lars_adapt` (bool, default True): whether LARS adapts the group's lr layer by layer.

Which optimiser a run uses: `resolve_optim` starts from the method's published small-data
setting (its `optimiser`) and lets every `optim.*` key the user gave win (see OptimConfig).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from selfsup.config import LIBRARY_OPTIM, OptimConfig

GROUP_OPTIONS = ("lr_scale", "fixed_lr", "frozen_until", "weight_decay", "lars_adapt")


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al., 2017).

    For each parameter p with gradient g and weight decay wd, the update direction is
    d = g + wd * p, scaled by the trust ratio eta * ||p|| / ||d|| before momentum. With `clip_lr`
    the trust ratio becomes min(trust / lr, 1), as in solo-learn's LARS (and apex's LARC "clip"
    mode): the layer's effective lr is min(eta * ||p|| / ||d||, lr), never above the scheduled
    lr, and a step moves the layer by at most eta of its norm. (solo-learn's ratio divides by
    ||g|| + wd * ||p||; this one by ||g + wd * p||, as SimCLR's LARS does.) Groups with
    `lars_adapt=False` (biases and norms, as in SimCLR) get plain SGD with momentum.
    Written here because torch ships no LARS; it runs inside `torch.no_grad()` so the update
    builds no autograd graph.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.02,
        clip_lr: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            eta=eta,
            clip_lr=clip_lr,
            lars_adapt=True,
        )
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("clip_lr", False)  # checkpoints from before clipping ran without it

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if group["weight_decay"]:
                    d = d.add(p, alpha=group["weight_decay"])
                if group["lars_adapt"]:
                    p_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    trust = torch.where(
                        (p_norm > 0) & (d_norm > 0), group["eta"] * p_norm / d_norm, 1.0
                    )
                    if group["clip_lr"]:
                        # lr 0 (the warm-up's first step): min(trust / 0, 1) = 1, as solo-learn
                        trust = trust.div(lr).clamp(max=1.0) if lr > 0 else torch.ones_like(trust)
                    d = d.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = d.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                p.add_(state["momentum_buffer"], alpha=-lr)
        return loss


OPTIM_FIELDS = tuple(f.name for f in dataclasses.fields(OptimConfig))


def complete(cfg: OptimConfig, base: OptimConfig = LIBRARY_OPTIM) -> OptimConfig:
    """`cfg` with every field it leaves None taken from `base` (lars_clip_lr None stays None:
    it means "clip when the scaled lr exceeds 1")."""
    return dataclasses.replace(
        cfg, **{f: getattr(base, f) for f in OPTIM_FIELDS if getattr(cfg, f) is None}
    )


def method_optim(settings: dict[str, Any], method: str = "?") -> OptimConfig:
    """A method's `optimiser` mapping as an OptimConfig (its other fields None); a key that is
    not an optimiser setting is a bug in the method."""
    unknown = sorted(set(settings) - set(OPTIM_FIELDS))
    if unknown:
        raise ValueError(f"method {method!r} declares unknown optimiser settings {unknown}")
    return OptimConfig(**settings)


def resolve_optim(
    user: OptimConfig, settings: dict[str, Any], method: str = "?"
) -> tuple[OptimConfig, dict[str, str]]:
    """The optimiser a run trains with, and where each setting came from ("yours", "method",
    "library").

    The user's keys (fields of `user` that are not None) win; the rest come from the method's
    published setting `settings` when the user kept its optimiser (or named none), else from
    LIBRARY_OPTIM; what the method does not give comes from LIBRARY_OPTIM too.
    """
    theirs = method_optim(settings, method)
    own = user.name is None or user.name == (theirs.name or LIBRARY_OPTIM.name)
    base = complete(theirs) if own else LIBRARY_OPTIM
    resolved = complete(user, base)
    sources = {}
    for f in OPTIM_FIELDS:
        if getattr(user, f) is not None:
            sources[f] = "yours"
        elif own and f in settings:
            sources[f] = "method"
        else:
            sources[f] = "library"
    return resolved, sources


def describe_optim(
    cfg: OptimConfig,
    global_batch: int,
    sources: dict[str, str] | None = None,
    method: str = "",
    reference: str = "",
) -> str:
    """The start-up line: optimiser, learning rate (base and scaled to the batch), schedule and
    where each setting came from."""
    cfg = complete(cfg)
    parts = [
        f"{cfg.name}, lr {cfg.lr:g} per 256 samples = {scaled_lr(cfg, global_batch):g} "
        f"at batch {global_batch}",
        f"weight decay {cfg.weight_decay:g}",
    ]
    if cfg.name in ("sgd", "lars"):
        parts.append(f"momentum {cfg.momentum:g}")
    if cfg.name == "adamw":
        parts.append(f"betas ({cfg.betas[0]:g}, {cfg.betas[1]:g})")
    if cfg.name == "lars":
        clip = {None: "when the scaled lr > 1", True: "on", False: "off"}[cfg.lars_clip_lr]
        parts.append(f"eta {cfg.lars_eta:g}, clip {clip}")
    warmup = f"linear warm-up over {100 * cfg.warmup:g} % of training, then " if cfg.warmup else ""
    if cfg.final_lr_fraction == 1:  # cosine from the peak to the peak: the lr stays put
        schedule = f"{warmup}constant" if warmup else "constant lr"
    elif cfg.schedule == "linear":
        schedule = f"{warmup}linear to {100 * cfg.final_lr_fraction:g} % of the peak"
    else:
        schedule = f"{warmup}cosine to {100 * cfg.final_lr_fraction:g} % of the peak"
    line = f"optimiser: {', '.join(parts)}; {schedule}"
    if sources is None:
        return line + " (as saved in the run's config.json)"
    groups: dict[str, list[str]] = {}
    for f in OPTIM_FIELDS:
        groups.setdefault(sources[f], []).append(f)
    said = []
    if "method" in groups:
        note = f": {reference}" if reference else ""
        said.append(f"{method}'s published setting{note} ({', '.join(groups['method'])})")
    if "yours" in groups:
        said.append(f"your optim.* keys ({', '.join(groups['yours'])})")
    if groups.get("library") and len(groups) > 1:
        said.append("the library's defaults for the rest")
    elif "library" in groups:
        said.append(f"the library's defaults ({reference or 'the method publishes none we use'})")
    return f"{line}. From {'; '.join(said)}. Change any with --set optim.KEY=VALUE"


def scaled_lr(cfg: OptimConfig, global_batch: int) -> float:
    """Linear scaling rule (Goyal et al., 2017): lr = base_lr * global_batch / 256."""
    return complete(cfg).lr * global_batch / 256


def _checked_options(group: dict[str, Any]) -> dict[str, Any]:
    """A group's options, checked: a bad one is a bug in the method that made the group."""
    if not isinstance(group, dict) or "params" not in group:
        raise ValueError(f"a parameter group is a dict with 'params'; got {group!r}")
    options = {k: v for k, v in group.items() if k != "params"}
    unknown = sorted(set(options) - set(GROUP_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown parameter group option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(GROUP_OPTIONS)}"
        )
    if not options.get("lr_scale", 1.0) >= 0:
        raise ValueError(f"lr_scale must be >= 0, got {options['lr_scale']!r}")
    if not 0 <= options.get("frozen_until", 0.0) < 1:
        raise ValueError(f"frozen_until is a progress fraction in [0, 1), got {options!r}")
    if not options.get("weight_decay", 0.0) >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {options['weight_decay']!r}")
    return options


def split_groups(
    groups: list[dict[str, Any]], cfg: OptimConfig, peak_lr: float
) -> list[dict[str, Any]]:
    """Torch parameter groups from a method's groups: options resolved, trainable params only.

    With `cfg.exclude_bias_and_norm` each group splits into its decayed part and its 1-d part
    (biases, norms: no weight decay, no LARS adaptation), both carrying the group's options.
    Parameters with requires_grad=False and groups left empty are dropped.
    """
    cfg = complete(cfg)
    out: list[dict[str, Any]] = []
    for group in groups:
        options = _checked_options(group)
        params = [p for p in group["params"] if p.requires_grad]
        scale = float(options.get("lr_scale", 1.0))
        frozen_until = float(options.get("frozen_until", 0.0))
        common = {
            "lr": 0.0 if frozen_until > 0 else peak_lr * scale,
            "lr_scale": scale,
            "fixed_lr": bool(options.get("fixed_lr", False)),
            "frozen_until": frozen_until,
            "frozen": frozen_until > 0,
            "peak_lr": peak_lr,
        }
        decayed = {
            "weight_decay": float(options.get("weight_decay", cfg.weight_decay)),
            "lars_adapt": bool(options.get("lars_adapt", True)),
        }
        if cfg.exclude_bias_and_norm:
            parts = [
                {"params": [p for p in params if p.ndim > 1], **common, **decayed},
                {
                    "params": [p for p in params if p.ndim <= 1],
                    **common,
                    "weight_decay": 0.0,
                    "lars_adapt": False,
                },
            ]
        else:
            parts = [{"params": params, **common, **decayed}]
        out.extend(part for part in parts if part["params"])
    return out


def _drop_frozen_grads(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Step pre-hook: a frozen group's parameters have no gradient, so the step skips them."""
    for group in optimizer.param_groups:
        if group.get("frozen"):
            for p in group["params"]:
                p.grad = None


def lars_clips(cfg: OptimConfig, lr: float) -> bool:
    """Whether LARS clips its adaptive lr: as configured, or (None) when the scaled lr exceeds 1,
    where an unclipped step would move a layer by more than eta of its norm (see OptimConfig)."""
    return cfg.lars_clip_lr if cfg.lars_clip_lr is not None else lr > 1.0


def build_optimizer(
    groups: list[dict[str, Any]] | nn.Module, cfg: OptimConfig, global_batch: int
) -> torch.optim.Optimizer:
    """The optimizer named in `cfg` over a method's parameter groups, lr scaled to the batch.

    `groups` are `{"params": [...], **options}` dicts (options in this module's docstring); an
    nn.Module stands for one group of its trainable parameters. Call `set_lr` every step.
    """
    if isinstance(groups, nn.Module):
        groups = [{"params": [p for p in groups.parameters() if p.requires_grad]}]
    cfg = complete(cfg)
    lr = scaled_lr(cfg, global_batch)
    parts = split_groups(list(groups), cfg, lr)
    if cfg.name == "lars":
        optimizer: torch.optim.Optimizer = LARS(
            parts,
            lr=lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            eta=cfg.lars_eta,
            clip_lr=lars_clips(cfg, lr),
        )
    else:
        for part in parts:
            part.pop("lars_adapt")
        if cfg.name == "sgd":
            optimizer = torch.optim.SGD(
                parts, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        else:
            optimizer = torch.optim.AdamW(
                parts, lr=lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas)
            )
    optimizer.register_step_pre_hook(_drop_frozen_grads)
    return optimizer


def lr_at(progress: float, cfg: OptimConfig, peak_lr: float) -> float:
    """Learning rate at `progress` in [0, 1]: linear warm-up to `peak_lr`, then cosine decay
    (or linear decay, `schedule` "linear": word2vec's) to `peak_lr * final_lr_fraction`."""
    cfg = complete(cfg)
    progress = min(max(progress, 0.0), 1.0)
    if cfg.warmup > 0 and progress < cfg.warmup:
        return peak_lr * progress / cfg.warmup
    t = (progress - cfg.warmup) / (1 - cfg.warmup)
    final = peak_lr * cfg.final_lr_fraction
    if cfg.schedule == "linear":
        return final + (peak_lr - final) * (1 - t)
    return final + (peak_lr - final) * 0.5 * (1 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float, progress: float | None = None) -> None:
    """Give each group the scheduled `lr` at training `progress`, through the group's options.

    A group's lr is `lr * lr_scale`; `peak lr * lr_scale` if `fixed_lr`; 0, and frozen, while
    `progress < frozen_until`. `progress` is needed once any group has `frozen_until`.
    """
    for group in optimizer.param_groups:
        scale = group.get("lr_scale", 1.0)
        frozen_until = group.get("frozen_until", 0.0)
        if frozen_until > 0 and progress is None:
            raise ValueError("set_lr needs the training progress: a group has frozen_until")
        group["frozen"] = frozen_until > 0 and progress < frozen_until
        if group["frozen"]:
            group["lr"] = 0.0
        elif group.get("fixed_lr"):
            group["lr"] = group["peak_lr"] * scale
        else:
            group["lr"] = lr * scale
