"""CMC, Contrastive Multiview Coding (Tian, Krishnan and Isola 2019): the views of a sample are
groups of its channels (L and ab of Lab for RGB images; depth and RGB, or any channel groups a
user names), each with its own encoder; the features of one view must pick out the other view of
the same sample among those of other samples.

This implementation contrasts with in-batch negatives (gathered across processes, InfoNCE in
both directions of every pair of views: the paper's "full graph"), not the paper's memory bank
with NCE over 16384 negatives. The exported encoder (kind "multiview") is one module that
concatenates every view's features, as the paper evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.distributed import gather_with_grad
from selfsup.losses import info_nce
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.multiview import MultiViewEncoder, MultiViewEncoderSpec


@dataclass
class CMCConfig:
    # "auto": L | ab of Lab for RGB images (the paper's), one view per named channel group for
    # an npz of named arrays (rgb | depth); or "lab", or views like "rgb|depth", "0-2|3"
    split: str = "auto"
    temperature: float = 0.07  # (paper: 0.07)
    proj_dim: int = 128  # per-view linear embedding, L2-normalised (paper: 128)
    gather_negatives: bool = True  # under DDP, negatives come from the global batch

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.proj_dim < 1:
            raise ValueError("temperature must be positive and proj_dim >= 1")


@register
class CMC(Method):
    """One encoder f_v per channel group v, linear heads g_v; InfoNCE between every pair."""

    name = "cmc"
    family = "clustering and distillation"
    paper = "Tian, Krishnan & Isola 2019, CMC"
    summary = "channel groups of an image (L and ab) are contrasted, one encoder each"
    Config = CMCConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.03,
        "weight_decay": 1e-4,
        "momentum": 0.9,
    }
    optimiser_reference = "the authors' code (train_CMC.py: SGD 0.03 at batch 256, wd 1e-4)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "crop-flip"
    num_views = 1  # one augmented image: its channel groups are the views (one crop for all)

    def __init__(self, spec: Any, cfg: CMCConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        # The image encoder the base class built is replaced by the multi-view one.
        self.encoder = MultiViewEncoder(MultiViewEncoderSpec.from_image_spec(spec, cfg.split))
        self.heads = nn.ModuleList(nn.Linear(d, cfg.proj_dim) for d in self.encoder.view_dims)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.encoder.views(views[0])
        z = [head(f) for head, f in zip(self.heads, feats, strict=True)]
        self.watch(nn.functional.normalize(z[0], dim=1))
        if self.cfg.gather_negatives:
            z = [gather_with_grad(zv) for zv in z]
        t = self.cfg.temperature
        pairs = list(combinations(range(len(z)), 2))
        loss = sum(info_nce(z[i], z[j], t) + info_nce(z[j], z[i], t) for i, j in pairs)
        return loss / (2 * len(pairs)), {}
