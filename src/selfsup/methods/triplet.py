"""Triplet loss (Schroff et al. 2015, FaceNet; Weinberger & Saul 2009), self-supervised: each
view is an anchor, the other view of its sample the positive, and the negative another sample
of the (global) batch: by default a semi-hard one (FaceNet sec. 3.2: the closest negative
farther than the positive), or the hardest one (batch-hard mining, which FaceNet warns can
collapse the model early), or a random one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfsup.distributed import gather_with_grad
from selfsup.losses import triplet
from selfsup.methods._metric_common import MetricConfig, MetricMethod
from selfsup.methods.base import Batch
from selfsup.methods.registry import register


@dataclass
class TripletConfig(MetricConfig):
    margin: float = 0.2  # FaceNet's alpha, on L2-normalised 128-d embeddings
    negatives: str = "semi-hard"  # semi-hard (FaceNet's) | hardest | random

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError("margin must be non-negative")
        if self.negatives not in ("semi-hard", "hardest", "random"):
            raise ValueError(
                f"negatives must be 'semi-hard', 'hardest' or 'random', got {self.negatives!r}"
            )


@register
class Triplet(MetricMethod):
    """loss triplet(normalize(g(f(v1))), normalize(g(f(v2))), margin, negatives)."""

    name = "triplet"
    paper = "Schroff et al. 2015, FaceNet triplet loss"
    summary = "an anchor nearer its positive than a semi-hard negative, by a margin"
    Config = TripletConfig

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = (F.normalize(z, dim=1) for z in self.embed(views))
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        chosen: torch.Tensor | str = self.cfg.negatives
        if self.cfg.negatives == "random":
            n = len(z1)
            # Another sample: an offset in 1..N-1 from the anchor's sample, either view.
            g = self.generator()
            offset = torch.randint(1, n, (2 * n,), generator=g)
            view = torch.randint(0, 2, (2 * n,), generator=g)
            sample = (torch.arange(2 * n) % n + offset) % n
            chosen = sample + view * n  # on the CPU; the loss checks it there
        return triplet(z1, z2, self.cfg.margin, chosen), {}
