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

from selfsup.augment.pretext import four_rotations
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import classifier_head


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
    num_views = 1  # one augmented image
    # The paper's ImageNet runs put the classifier on AlexNet's conv5 (no extra MLP needed at
    # that width); the linear head is the closest choice on a pooled ResNet/ViT output.
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"head_hidden_dim": 0}}

    def __init__(self, spec: Any, cfg: RotationConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.head = classifier_head(self.encoder.out_dim, cfg.head_hidden_dim, 4)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rotated, labels = four_rotations(views[0])  # rotation-major: rows :B are upright
        features = self.encoder(rotated)
        logits = self.head(features)
        self.watch(F.normalize(features[: views[0].shape[0]], dim=1))
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return F.cross_entropy(logits, labels), {"pretext_accuracy": accuracy}
