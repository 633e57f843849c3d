"""SimSiam (Chen & He, 2021): a Siamese network with a predictor and a stop-gradient; no
negatives, no momentum encoder.

Encoder f, projector g (its output batch-normalised), predictor h; with z = g(f(v)) and
p = h(z), the loss is negative_cosine(p1, stopgrad(z2)) / 2 + negative_cosine(p2,
stopgrad(z1)) / 2. The predictor keeps a fixed learning rate (param group `fixed_lr`), as in the
paper. `predictor=False` drops h: the method then collapses (paper, sec. 4.2), which the collapse
monitor's `proj_std` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.losses import negative_cosine
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import projection_head


@dataclass
class SimSiamConfig:
    # Paper, CIFAR (sec. B / appendix D): 2-layer projector of 2048 with BN on its output,
    # predictor 2048 -> 512 -> 2048; ImageNet uses a 3-layer projector (the preset).
    proj_hidden_dim: int = 2048
    proj_dim: int = 2048
    proj_layers: int = 2
    pred_hidden_dim: int = 512
    predictor: bool = True  # False collapses (paper, table 1)
    fixed_predictor_lr: bool = True  # paper, sec. 4.2: better without decaying h's lr

    def __post_init__(self) -> None:
        if self.proj_layers < 1:
            raise ValueError("proj_layers must be at least 1")
        if min(self.proj_hidden_dim, self.proj_dim, self.pred_hidden_dim) < 1:
            raise ValueError("head dimensions must be positive")


@register
class SimSiam(Method):
    """Encoder f, projector g, predictor h; loss -cos(h(z1), sg(z2))/2 - cos(h(z2), sg(z1))/2."""

    name = "simsiam"
    family = "non-contrastive"
    paper = "Chen & He 2021, SimSiam"
    summary = "a predictor and a stop-gradient between two views; no negatives, no momentum"
    Config = SimSiamConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.03,
        "weight_decay": 5e-4,
        "momentum": 0.9,
    }
    optimiser_reference = (
        "the paper's CIFAR-10 setting (SGD 0.03 x batch/256, wd 5e-4; ImageNet: 0.05, wd 1e-4)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "simclr"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"proj_layers": 3}}

    def __init__(self, spec: Any, cfg: SimSiamConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        head = projection_head(
            self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers
        )
        # The paper's projector ends in BN (no affine parameters, as in its code).
        self.projector = nn.Sequential(*head, nn.BatchNorm1d(cfg.proj_dim, affine=False))
        self.predictor = (
            projection_head(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim)
            if cfg.predictor
            else nn.Identity()
        )

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = (self.projector(self.encoder(v)) for v in views)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        self.watch(z1)
        loss = (negative_cosine(p1, z2.detach()) + negative_cosine(p2, z1.detach())) / 2
        return loss, {}

    def param_groups(self) -> list[dict[str, Any]]:
        rest = [p for n, p in self.named_parameters() if not n.startswith("predictor.")]
        groups: list[dict[str, Any]] = [{"params": rest}]
        pred = list(self.predictor.parameters())
        if pred:
            groups.append({"params": pred, "fixed_lr": self.cfg.fixed_predictor_lr})
        return groups
