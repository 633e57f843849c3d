"""BYOL (Grill et al., 2020): an online network predicts a momentum target network's projection
of another view of the image; no negatives.

Online: encoder f, projector g, predictor q. Target: copies of f and g moved by EMA, with the
momentum rising from `momentum_base` to 1 on a half cosine of training progress. Loss, symmetric
over the two views: normalized_mse(q(g(f(v1))), g'(f'(v2))) + the same with the views swapped
(each term 2 - 2 cos). `predictor=False` drops q: the method then collapses (the collapse
monitor's `proj_std` falls far below 1/sqrt(d)), which is what the predictor prevents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.losses import normalized_mse
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import cosine_momentum, ema_update, momentum_teacher, projection_head


@dataclass
class BYOLConfig:
    # Paper (ImageNet and its CIFAR follow-ups, e.g. solo-learn): MLPs of 4096 hidden units
    # with a 256-d output for projector and predictor, base momentum 0.99 (0.996 at ImageNet).
    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    momentum_base: float = 0.99
    momentum_final: float = 1.0
    predictor: bool = True  # False collapses (shows what the predictor is for)

    def __post_init__(self) -> None:
        if not 0 <= self.momentum_base <= self.momentum_final <= 1:
            raise ValueError("need 0 <= momentum_base <= momentum_final <= 1")
        if min(self.proj_hidden_dim, self.proj_dim, self.pred_hidden_dim) < 1:
            raise ValueError("head dimensions must be positive")


@register
class BYOL(Method):
    """Online f, g, q; target f', g' (EMA); loss 2 - 2 cos(q(g(f(v1))), g'(f'(v2))), symmetric."""

    name = "byol"
    family = "non-contrastive"
    paper = "Grill et al. 2020, BYOL"
    summary = "an online network predicts a momentum target's projection of another view"
    Config = BYOLConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 1.0, "weight_decay": 1e-5}
    optimiser_reference = (
        "solo-learn's CIFAR BYOL (the paper's ImageNet: LARS 0.2 x batch/256, wd 1.5e-6)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "byol"
    # ImageNet: tau_base 0.996 (paper, sec. 3.2), heads 4096 -> 256 as at CIFAR.
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"momentum_base": 0.996}}

    def __init__(self, spec: Any, cfg: BYOLConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.projector = projection_head(self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)
        self.predictor = (
            projection_head(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim)
            if cfg.predictor
            else nn.Identity()
        )
        # The target network: a submodule (saved in checkpoints) without gradients.
        self.target = momentum_teacher(
            nn.ModuleDict({"encoder": self.encoder, "projector": self.projector})
        )
        self.register_buffer("momentum", torch.tensor(cfg.momentum_base, dtype=torch.float64))

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = [self.projector(self.encoder(v)) for v in views]
        p = [self.predictor(zi) for zi in z]
        with torch.no_grad():
            t = [self.target["projector"](self.target["encoder"](v)) for v in views]
        self.watch(z[0])
        loss = normalized_mse(p[0], t[1]) + normalized_mse(p[1], t[0])
        return loss, {"momentum": self.momentum.detach().clone()}

    def after_step(self, progress: float) -> None:
        """EMA of the target towards the online network, at the momentum of this progress."""
        tau = cosine_momentum(progress, self.cfg.momentum_base, self.cfg.momentum_final)
        online = nn.ModuleDict({"encoder": self.encoder, "projector": self.projector})
        ema_update(self.target, online, tau)
        self.momentum.fill_(tau)
