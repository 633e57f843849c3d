"""MoCo v3 (Chen, Xie & He 2021): a query network with a predictor, a momentum key network,
and a symmetric contrastive loss over the keys of the (global) batch, with no queue.

q = h(g(f(v))) (backbone, projector ending in BatchNorm without affine, predictor);
k = g'(f'(v)) from the momentum copy of backbone and projector. The loss
(`mocov3_contrastive`, Algorithm 1):

    loss = ctr(q1, k2) + ctr(q2, k1),   ctr(q, k) = 2 T * CE(q . k^T / T, own index),  T 0.2

The keys are gathered from every rank (without gradient) so that each query is scored against
the global batch; each rank's queries are its own, at offset rank * N. The momentum rises from
0.99 to 1 on a half cosine over training. Meant for ViT backbones (`--set
model.backbone=vit-tiny`: patch 4 at 32 px, 16 at 224) but any backbone works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.distributed import gather_without_grad, rank
from selfsup.losses import mocov3_contrastive
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import cosine_momentum, ema_update, momentum_teacher, projection_head


@dataclass
class MoCoV3Config:
    """The paper's ViT settings (T 0.2, m 0.99 -> 1, 3-layer projector and 2-layer predictor
    of 4096 hidden units, 256-d output); its ResNet-50 runs use T 1.0 (the "resnet" preset)."""

    temperature: float = 0.2
    momentum: float = 0.99  # base of the cosine schedule to 1
    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    proj_layers: int = 3
    pred_hidden_dim: int = 4096

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError("momentum must lie in [0, 1]")


@register
class MoCoV3(Method):
    """Backbone + projector + predictor; momentum backbone + projector give the keys."""

    name = "mocov3"
    family = "contrastive, queue or memory"
    paper = "Chen, Xie & He 2021, MoCo v3"
    summary = "a predictor on the query network matches momentum keys of the batch, no queue"
    Config = MoCoV3Config
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.3, "weight_decay": 1e-6}
    optimiser_reference = (
        "solo-learn's CIFAR MoCo v3 (the paper: AdamW 1.5e-4, wd 0.1 for ViTs; LARS 0.6, wd "
        "1e-6 for ResNets)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "byol"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {},  # the paper's ViT ImageNet values are the defaults
        "resnet": {"temperature": 1.0},
    }

    def __init__(self, spec: Any, cfg: MoCoV3Config, augment: Any):
        super().__init__(spec, cfg, augment)
        # The reference `_build_mlp(..., last_bn=True)` ends the projector in BatchNorm
        # without affine parameters (after SimCLR's head); the predictor has no final BN.
        head = projection_head(
            self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers
        )
        self.projector = nn.Sequential(*head, nn.BatchNorm1d(cfg.proj_dim, affine=False))
        self.predictor = projection_head(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim, 2)
        self.key_encoder = momentum_teacher(self.encoder)
        self.key_projector = momentum_teacher(self.projector)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        v1, v2 = views[0], views[1]
        q1 = self.predictor(self.projector(self.encoder(v1)))
        q2 = self.predictor(self.projector(self.encoder(v2)))
        self.watch(torch.nn.functional.normalize(q1, dim=1))
        with torch.no_grad():
            k1 = gather_without_grad(self.key_projector(self.key_encoder(v1)))
            k2 = gather_without_grad(self.key_projector(self.key_encoder(v2)))
        offset, t = rank() * len(q1), self.cfg.temperature
        loss = mocov3_contrastive(q1, k2, t, offset) + mocov3_contrastive(q2, k1, t, offset)
        return loss, {}

    def after_step(self, progress: float) -> None:
        m = cosine_momentum(progress, self.cfg.momentum)
        ema_update(self.key_encoder, self.encoder, m)
        ema_update(self.key_projector, self.projector, m)
