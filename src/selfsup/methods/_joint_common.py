"""What Barlow Twins and VICReg share: an encoder f and a projector g on two augmented views,
the two embeddings gathered over ranks with their gradient, so that the batch statistics of
their losses (correlation, variance, covariance) are the global batch's under DDP."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfsup.distributed import gather_with_grad
from selfsup.methods.base import Method
from selfsup.models import projection_head


def check_projector(cfg: Any, what: str) -> None:
    """Refuse a projector without layers or of zero width (`what`: the paper's name for it)."""
    if cfg.proj_layers < 1 or min(cfg.proj_hidden_dim, cfg.proj_dim) < 1:
        raise ValueError(f"the {what} needs at least one layer of positive width")


class TwoViewJointMethod(Method):
    """Encoder f and projector g (`proj_hidden_dim`, `proj_dim`, `proj_layers` of the config);
    `embed_pair(views)` gives the two views' z = g(f(v)), gathered over ranks."""

    family = "non-contrastive"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "byol"  # both papers use BYOL's views
    presets: ClassVar[dict[str, dict[str, Any]]] = {  # both papers' ImageNet projector
        "imagenet": {"proj_hidden_dim": 8192, "proj_dim": 8192}
    }

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        super().__init__(spec, cfg, augment)
        self.projector = projection_head(
            self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers
        )

    def embed_pair(self, views: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """z1, z2 of the global batch: each view through f and g on its own (BatchNorm sees one
        view at a time), the first watched by the collapse monitor, both gathered with their
        gradient (backward sums over ranks)."""
        z1, z2 = (self.projector(self.encoder(v)) for v in views)
        self.watch(z1)
        return gather_with_grad(z1), gather_with_grad(z2)
