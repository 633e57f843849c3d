"""Contrastive loss with a margin (Hadsell, Chopra & LeCun 2006, DrLIM), self-supervised: the
two views of a sample are a similar pair, views of different samples of the (global) batch are
dissimilar pairs, pushed apart up to a margin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfsup.distributed import gather_with_grad
from selfsup.losses import contrastive_margin
from selfsup.methods._metric_common import MetricConfig, MetricMethod
from selfsup.methods.base import Batch
from selfsup.methods.registry import register


@dataclass
class ContrastiveMarginConfig(MetricConfig):
    # The paper sets the margin by the scale of its (unnormalised) embedding (m = 1.25 in its
    # airplane experiment); on L2-normalised embeddings distances lie in [0, 2], and 1.0 (a
    # right angle is sqrt(2)) is our default.
    margin: float = 1.0
    normalize: bool = True  # L2-normalise the projections before the distances

    def __post_init__(self) -> None:
        if self.margin <= 0:
            raise ValueError("margin must be positive")


@register
class ContrastiveMargin(MetricMethod):
    """loss contrastive_margin(g(f(v1)), g(f(v2)), margin) over the (global) batch."""

    name = "contrastive_margin"
    paper = "Hadsell, Chopra & LeCun 2006, DrLIM"
    summary = "views of a sample pulled together, other samples pushed past a margin"
    Config = ContrastiveMarginConfig

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = self.embed(views)
        if self.cfg.normalize:
            z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        return contrastive_margin(z1, z2, self.cfg.margin), {}
