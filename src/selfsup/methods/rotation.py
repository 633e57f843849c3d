"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): predict which of four rotations was applied.

Every image of the batch is shown at 0, 90, 180 and 270 degrees (all four in the same batch, as
the paper found best), and a head on the encoder's pooled features classifies the rotation. The
loss is a plain cross-entropy over the four classes (`torch.nn.functional.cross_entropy`), so
there is no loss module of its own. The pretext accuracy is logged as `pretext_accuracy`.

Paper settings (CIFAR-10): a Network-in-Network backbone, SGD (momentum 0.9, weight decay 5e-4,
lr 0.1 divided by 5 at epochs 30, 60, 80), 100 epochs, batch 128 images (x4 rotations); the
rotation classifier sits on the last convolutional block. Here the backbone is the run's
encoder and the head a small MLP (`head_hidden_dim`, 0 for a linear head) on its pooled output;
the optimizer is the paper's SGD (without Nesterov) on the run's warm-up + cosine schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.augment.pretext import four_rotations
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register


def classifier_head(in_dim: int, hidden_dim: int, num_classes: int) -> nn.Module:
    """Linear head when hidden_dim is 0, else Linear-BN-ReLU-Linear (the pretext classifier)."""
    if hidden_dim <= 0:
        return nn.Linear(in_dim, num_classes)
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, num_classes),
    )


def rotation_logits(encoder: nn.Module, head: nn.Module, x: torch.Tensor) -> tuple[Any, Any]:
    """Logits (4B, 4) of the rotation head on all four rotations of x, their labels, and the
    encoder features of the four rotations (rotation-major: rows :B are the upright images)."""
    rotated, labels = four_rotations(x)
    features = encoder(rotated)
    return head(features), labels, features


@dataclass
class RotationConfig:
    head_hidden_dim: int = 256  # 0: a linear head on the pooled features

    def __post_init__(self) -> None:
        if self.head_hidden_dim < 0:
            raise ValueError("head_hidden_dim must be >= 0 (0 is a linear head)")


@register
class Rotation(Method):
    """Encoder f, head h; loss CE(h(f(rot_k(x))), k) over k in {0, 1, 2, 3} and the batch."""

    name = "rotation"
    family = "pretext"
    paper = "Gidaris, Singh & Komodakis 2018, RotNet"
    summary = "predict which of four rotations was applied"
    Config = RotationConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.2,
        "weight_decay": 5e-4,
        "momentum": 0.9,
    }
    optimiser_reference = (
        "the authors' CIFAR-10 config (RotNet: SGD 0.1 at batch 128, Nesterov momentum 0.9, "
        "wd 5e-4)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "rotnet"
    # The paper's ImageNet runs put the classifier on AlexNet's conv5 (no extra MLP needed at
    # that width); the linear head is the closest choice on a pooled ResNet/ViT output.
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"head_hidden_dim": 0}}

    def __init__(self, spec: Any, cfg: RotationConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.head = classifier_head(self.encoder.out_dim, cfg.head_hidden_dim, 4)

    def views(self, batch: Batch) -> list[torch.Tensor]:
        return [self.augment(batch["image"], view=0)]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, labels, features = rotation_logits(self.encoder, self.head, views[0])
        self.watch(F.normalize(features[: views[0].shape[0]], dim=1))
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return F.cross_entropy(logits, labels), {"pretext_accuracy": accuracy}
