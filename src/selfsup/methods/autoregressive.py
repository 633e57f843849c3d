"""Autoregressive next-patch prediction: the small-scale form of AIM (El-Nouby et al., "Scalable
Pre-training of Large Autoregressive Image Models", ICML 2024) and iGPT (Chen et al. 2020).

The image is cut into patches in raster order; a causal ViT (`vit-...-causal`: every token
attends only to [CLS] and the patches before it) reads them, and an MLP head on the token of
patch k regresses the pixels of patch k + 1, normalised per patch as AIM does (its table 4:
normalised pixel targets beat raw pixels and discrete tokens). Every patch but the first is a
target. AIM uses a prefix of bidirectional attention at training time so that its encoder can
attend both ways downstream; here the exported encoder stays causal, exactly as trained, and
its pooled feature is the mean of its patch tokens (AIM probes an average of patch features).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.losses import patch_mse
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.masking import patchify
from selfsup.models.vit import require_vit


@dataclass
class AutoregressiveConfig:
    # AIM's head is a stack of 12 MLP blocks of width 2048 at ImageNet scale (its `imagenet`
    # preset here keeps the width with 2 layers); it trains no CIFAR model, so this small-image
    # default, a 2-layer MLP of width 512, is ours.
    head_hidden_dim: int = 512
    head_layers: int = 2
    norm_pix_loss: bool = True  # per-patch normalised targets (AIM's choice)

    def __post_init__(self) -> None:
        if self.head_hidden_dim < 1 or self.head_layers < 1:
            raise ValueError("head_hidden_dim and head_layers must be positive")


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, layers: int) -> nn.Sequential:
    """LayerNorm, then (Linear-GELU) x (layers - 1), then Linear to the patch's pixels."""
    modules: list[nn.Module] = [nn.LayerNorm(in_dim)]
    dim = in_dim
    for _ in range(layers - 1):
        modules += [nn.Linear(dim, hidden_dim), nn.GELU()]
        dim = hidden_dim
    modules.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*modules)


@register
class Autoregressive(Method):
    """Causal ViT over raster-order patches; the token of patch k predicts patch k + 1."""

    name = "autoregressive"
    family = "reconstruction"
    paper = "El-Nouby et al. 2024, AIM; Chen et al. 2020, iGPT"
    summary = "a causal ViT predicts each next patch's pixels"
    Config = AutoregressiveConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1.5e-4,
        "weight_decay": 0.05,
        "betas": (0.9, 0.95),
    }
    optimiser_reference = "MAE's AdamW (AIM trains with AdamW, betas 0.9 / 0.95, wd 0.05, as MAE)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "aim"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"head_hidden_dim": 2048}}

    def __init__(self, spec: Any, cfg: AutoregressiveConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        backbone = require_vit(self.name, self.encoder, True, "vit-mini-p2-causal")
        self.patch = backbone.patch_size
        pixels = self.patch * self.patch * spec.in_channels
        self.head = mlp_head(backbone.out_dim, cfg.head_hidden_dim, pixels, cfg.head_layers)

    def views(self, batch: Batch) -> list[torch.Tensor]:
        return [self.augment(batch["image"], view=0)]

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted patches 2..N, their target pixels), each (B, N - 1, P), of float images."""
        x = self.encoder.normalise(images)
        vit = self.encoder.backbone
        tokens = vit.forward_features(x)  # causal: (B, 1 + N, D), [CLS] first
        self.watch(F.normalize(vit.pool(tokens), dim=1))
        patches = tokens[:, 1:]
        target = patchify(x, self.patch)
        return self.head(patches[:, :-1]), target[:, 1:]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prediction, target = self.predict(views[0])
        return patch_mse(prediction, target, None, self.cfg.norm_pix_loss), {}
