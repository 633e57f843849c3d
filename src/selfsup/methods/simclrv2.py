"""SimCLR v2 (Chen et al., 2020b, "Big Self-Supervised Models are Strong Semi-Supervised
Learners"): SimCLR with a deeper (3-layer) projection head, fine-tuned from a middle layer of it.

The first `export_head_layers` layers of the head (Linear-BN-ReLU each) belong to the encoder
(`ImageEncoderSpec.head_dims`), so the exported encoder that users load gives the features of
that layer, and loads with `selfsup.load` like any image encoder. The rest of the head maps them
to the embedding of the NT-Xent loss, with negatives from the global batch under DDP.
Not included: v2's MoCo-style memory of negatives (the paper's gain from it is about 1 %) and
distillation (a separate, supervised stage).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from selfsup.distributed import gather_with_grad
from selfsup.errors import SelfsupError
from selfsup.losses import nt_xent
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import projection_head


@dataclass
class SimCLRv2Config:
    # Paper (ImageNet): 3-layer head whose widths match the encoder (2048 for ResNet-50),
    # 128-d output, temperature 0.1, fine-tuning from the head's first layer. CIFAR size: the
    # same head at 2048, temperature 0.2 as our SimCLR (measured better at short budgets).
    temperature: float = 0.2
    proj_hidden_dim: int = 2048
    proj_dim: int = 128
    proj_layers: int = 3
    export_head_layers: int = 1  # head layers in the exported encoder (0: the backbone alone)
    gather_negatives: bool = True  # under DDP, negatives come from the global batch

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.proj_layers < 1 or min(self.proj_hidden_dim, self.proj_dim) < 1:
            raise ValueError("the head needs at least one layer of positive width")
        if not 0 <= self.export_head_layers < self.proj_layers:
            raise ValueError(
                f"export_head_layers must be in [0, proj_layers - 1] = [0, {self.proj_layers - 1}]"
                f" (the head's last, linear layer is never exported); got {self.export_head_layers}"
            )


@register
class SimCLRv2(Method):
    """Encoder f (backbone + first head layers), rest of the head g; loss nt_xent(g(f(v1)), ...)."""

    name = "simclrv2"
    family = "contrastive"
    paper = "Chen et al. 2020b, SimCLR v2"
    summary = "SimCLR with a 3-layer projection head, exported with its first layer"
    Config = SimCLRv2Config
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.4, "weight_decay": 1e-4}
    optimiser_reference = "SimCLR's CIFAR setting (solo-learn; the paper gives ImageNet only)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "simclr"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"temperature": 0.1}}

    def __init__(self, spec: Any, cfg: SimCLRv2Config, augment: Any):
        if not hasattr(spec, "head_dims"):
            raise SelfsupError("simclrv2 needs an image encoder (its head layers are exported)")
        kept = (cfg.proj_hidden_dim,) * cfg.export_head_layers
        super().__init__(replace(spec, head_dims=tuple(spec.head_dims) + kept), cfg, augment)
        self.projection_head = projection_head(
            self.encoder.out_dim,
            cfg.proj_hidden_dim,
            cfg.proj_dim,
            cfg.proj_layers - cfg.export_head_layers,
        )

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = (self.projection_head(self.encoder(v)) for v in views)
        self.watch(z1)
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        return nt_xent(z1, z2, self.cfg.temperature), {}
