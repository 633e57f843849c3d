"""What the metric-learning methods share (contrastive_margin, triplet, npair, supcon,
block_contrastive): an encoder and a projection head on augmented views, and a step counter
that seeds the random draws of a step identically on every rank and across a resume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selfsup.methods.base import Batch, Method
from selfsup.models import projection_head


@dataclass
class MetricConfig:
    """The projection head and the negatives every metric method's config has (subclassed)."""

    proj_hidden_dim: int = 2048
    proj_dim: int = 128
    proj_layers: int = 2
    gather_negatives: bool = True  # under DDP, negatives come from the global batch


class MetricMethod(Method):
    """Encoder f and projection head g; `embed(views)` returns g(f(v)) per view.

    Subclasses' configs carry proj_hidden_dim, proj_dim and proj_layers. `num_views` views are
    made per sample (two by default). The `draws` buffer counts optimizer steps: `generator()`
    seeds a CPU generator from it, so random negatives are the same on every rank (each rank
    computes the loss of the global batch) and a resumed run draws what the straight one did.
    """

    # None of these methods has a published self-supervised recipe: SimCLR's views and
    # the library's optimiser (SimCLR's measured one); SupCon overrides with its authors'.
    family = "metric"
    optimiser_reference = (
        "no self-supervised setting published: the library's (SimCLR's measured one)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "simclr"

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        super().__init__(spec, cfg, augment)
        self.projection_head = projection_head(
            self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers
        )
        self.register_counter("draws", torch.long)

    def views(self, batch: Batch) -> list[torch.Tensor]:
        x = batch["image"]
        # Recipes name two views; further views reuse the second view's settings.
        return [self.augment(x, view=min(k, 1)) for k in range(self.num_views)]

    def embed(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """g(f(v)) for each view, one view at a time (BatchNorm sees one view per batch)."""
        z = [self.projection_head(self.encoder(v)) for v in views]
        self.watch(z[0])
        return z

    def generator(self) -> torch.Generator:
        """A CPU generator seeded by the step count (same on every rank, resumes exactly)."""
        return torch.Generator().manual_seed(1_000_003 * int(self.counter("draws")) + 17)

    def after_step(self, progress: float) -> None:
        self.set_counter("draws", self.counter("draws") + 1)
