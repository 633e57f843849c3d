"""SimCLR with a rotation-prediction head (a hybrid of Chen et al. 2020 and Gidaris et al. 2018).

One encoder, two heads: SimCLR's projection head on two augmented views under NT-Xent, and
RotNet's classifier on the four rotations (0, 90, 180, 270 degrees) of the first view:

    loss = nt_xent(g(f(v1)), g(f(v2))) + rotation_weight * CE(h(f(rot_k(v1))), k)

The upright copy of v1 is shared by both terms (one encoder pass of 4B + B images per step).
Under DDP the contrastive negatives come from the global batch (gathered with gradient); the
rotation term is a per-sample mean, averaged by DDP like any loss. Logs `pretext_accuracy`
and the two terms (`contrastive`, `rotation`). The paper-level defaults are SimCLR's (our
temperature 0.2 at CIFAR size, 0.1 at ImageNet) with rotation_weight 1.0 (as in the
auxiliary-rotation literature, e.g. Chen et al. 2019's self-supervised GAN uses 0.5-1.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.augment.pretext import four_rotations
from selfsup.distributed import gather_with_grad
from selfsup.losses import nt_xent
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import classifier_head, projection_head


@dataclass
class SimCLRRotationConfig:
    temperature: float = 0.2
    proj_hidden_dim: int = 2048
    proj_dim: int = 128
    proj_layers: int = 2
    gather_negatives: bool = True  # under DDP, negatives come from the global batch
    rotation_weight: float = 1.0
    rotation_hidden_dim: int = 256  # 0: a linear rotation head

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.rotation_weight < 0:
            raise ValueError("rotation_weight must be >= 0")
        if self.rotation_hidden_dim < 0:
            raise ValueError("rotation_hidden_dim must be >= 0 (0 is a linear head)")


@register
class SimCLRRotation(Method):
    """Encoder f, projection g, rotation head h; NT-Xent + weight * rotation cross-entropy."""

    name = "simclr_rotation"
    family = "pretext"
    paper = "Chen et al. 2020 with Gidaris et al. 2018"
    summary = "SimCLR plus a rotation-prediction head"
    Config = SimCLRRotationConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.4, "weight_decay": 1e-4}
    optimiser_reference = "SimCLR's CIFAR setting (solo-learn)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "simclr"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"temperature": 0.1}}

    def __init__(self, spec: Any, cfg: SimCLRRotationConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        dim = self.encoder.out_dim
        self.projection_head = projection_head(
            dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers
        )
        self.rotation_head = classifier_head(dim, cfg.rotation_hidden_dim, 4)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        v1, v2 = views
        b = v1.shape[0]
        rotated, labels = four_rotations(v1)  # rotation-major: rows :b are v1 upright
        features = self.encoder(rotated)
        logits = self.rotation_head(features)
        rotation = F.cross_entropy(logits, labels)
        z1 = self.projection_head(features[:b])  # the upright copy of v1
        z2 = self.projection_head(self.encoder(v2))
        self.watch(z1)
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        contrastive = nt_xent(z1, z2, self.cfg.temperature)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        logs = {
            "pretext_accuracy": accuracy,
            "contrastive": contrastive.detach(),
            "rotation": rotation.detach(),
        }
        return contrastive + self.cfg.rotation_weight * rotation, logs
