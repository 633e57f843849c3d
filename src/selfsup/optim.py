"""Optimizers (SGD, LARS, AdamW) and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from selfsup.config import OptimConfig


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


def parameter_groups(model: nn.Module, exclude_bias_and_norm: bool) -> list[dict]:
    """Split parameters into those with weight decay / LARS and 1-d ones (biases, norms)."""
    if not exclude_bias_and_norm:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (plain if p.ndim <= 1 else decay).append(p)
    return [{"params": decay}, {"params": plain, "weight_decay": 0.0, "lars_adapt": False}]


def scaled_lr(cfg: OptimConfig, global_batch: int) -> float:
    """Linear scaling rule (Goyal et al., 2017): lr = base_lr * global_batch / 256."""
    return cfg.lr * global_batch / 256


def build_optimizer(model: nn.Module, cfg: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    """The optimizer named in `cfg`, with its learning rate scaled to the global batch."""
    lr = scaled_lr(cfg, global_batch)
    groups = parameter_groups(model, cfg.exclude_bias_and_norm)
    if cfg.name == "lars":
        return LARS(
            groups,
            lr=lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            eta=cfg.lars_eta,
            clip_lr=cfg.lars_clip_lr,
        )
    for g in groups:
        g.pop("lars_adapt", None)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)


def lr_at(progress: float, cfg: OptimConfig, peak_lr: float) -> float:
    """Learning rate at `progress` in [0, 1]: linear warm-up to `peak_lr`, then cosine decay."""
    progress = min(max(progress, 0.0), 1.0)
    if cfg.warmup > 0 and progress < cfg.warmup:
        return peak_lr * progress / cfg.warmup
    t = (progress - cfg.warmup) / (1 - cfg.warmup)
    final = peak_lr * cfg.final_lr_fraction
    return final + (peak_lr - final) * 0.5 * (1 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
