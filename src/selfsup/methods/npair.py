"""Multi-class N-pair loss (Sohn 2016), self-supervised: view 1 of each sample is an anchor,
view 2 of the same sample its positive, view 2 of the other samples of the (global) batch its
N-1 negatives; the embeddings' L2 norm is regularised as in the paper."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selfsup.distributed import gather_with_grad
from selfsup.losses import npair
from selfsup.methods._metric_common import MetricConfig, MetricMethod
from selfsup.methods.base import Batch
from selfsup.methods.registry import register


@dataclass
class NPairConfig(MetricConfig):
    l2_reg: float = 0.002  # weight of the embeddings' squared L2 norm (paper Sec. 3.2.2)
    symmetric: bool = True  # also view 2 as anchors against view 1 (both views used alike)

    def __post_init__(self) -> None:
        if self.l2_reg < 0:
            raise ValueError("l2_reg must be non-negative")


@register
class NPair(MetricMethod):
    """loss npair(g(f(v1)), g(f(v2)), l2_reg), averaged with its mirror when symmetric."""

    name = "npair"
    paper = "Sohn 2016, N-pair loss"
    summary = "a softmax over one positive and the batch's N-1 negatives, raw embeddings"
    Config = NPairConfig

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = self.embed(views)
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        loss = npair(z1, z2, self.cfg.l2_reg)
        if self.cfg.symmetric:
            loss = (loss + npair(z2, z1, self.cfg.l2_reg)) / 2
        return loss, {"embedding_norm": z1.detach().norm(dim=1).mean()}
