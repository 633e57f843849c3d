"""Supervised contrastive learning (Khosla et al. 2020). NOT self-supervised: it trains with the
labels. Every view of a sample of the same class in the (global) batch is a positive; a run
says so when it starts, and its report and evaluation table mark it as supervised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.distributed import gather_with_grad, gather_without_grad
from selfsup.losses import supcon
from selfsup.methods._metric_common import MetricConfig, MetricMethod
from selfsup.methods.base import Batch
from selfsup.methods.registry import register


@dataclass
class SupConConfig(MetricConfig):
    temperature: float = 0.1  # the paper's (Sec. 4 / appendix: 0.1 works best)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")


@register
class SupCon(MetricMethod):
    """loss supcon(concat(g(f(v1)), g(f(v2))), concat(y, y), temperature): supervised."""

    name = "supcon"
    family = "metric (trains with labels)"
    paper = "Khosla et al. 2020, SupCon"
    summary = "every view of the same class is a positive: NOT self-supervised"
    Config = SupConConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.125,
        "weight_decay": 1e-4,
        "momentum": 0.9,
    }
    optimiser_reference = "the authors' CIFAR setting (SupContrast: SGD 0.5 at batch 1024, wd 1e-4)"
    inputs = frozenset({"image", "label"})
    uses_labels = True  # human labels: the classes
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"temperature": 0.1}}

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = self.embed(views)
        labels = batch["label"]
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
            labels = gather_without_grad(labels)
        z = torch.cat([z1, z2])
        return supcon(z, torch.cat([labels, labels]), self.cfg.temperature), {}
