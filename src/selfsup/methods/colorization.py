"""Colorization (Zhang, Isola & Efros, ECCV 2016): predict the colour (Lab a, b) from lightness.

The encoder sees only L of each RGB image (its spec has `lightness=True`: it converts RGB to
Lab itself, so the exported encoder takes RGB images as users hold them, and `selfsup.load`
then `encoder(encoder.preprocess(rgb))` needs nothing else). A decoder maps the pooled feature
to a coarse ab map (`ab_side` x `ab_side`, upsampled bilinearly to the image), trained by
regression (`selfsup.losses.ab_regression` on ab / 110).

Differences from the paper, said plainly: we take the regression form, not the paper's
classification over 313 quantised ab bins with class rebalancing; and the colour map is decoded
from the pooled feature (any backbone, ViTs included) rather than by a fully convolutional
network at a quarter of the resolution. Paper settings (ImageNet): 256 px inputs with 224 px
crops, batch 40, Adam lr 3e-5 (beta 0.9, 0.99), weight decay 1e-3; no CIFAR setting is given.
Colour augmentations would corrupt the target: by default the views are crops and flips only
(the `light` recipe), whatever the run's recipe (`colour_augment=true` keeps the run's).

Needs RGB data: grey data (digits, MNIST) is refused with a clear error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.augment.color_space import lab_to_rgb, rgb_to_lab
from selfsup.errors import SelfsupError
from selfsup.losses import ab_regression
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register

AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay below about 110
L_MEAN, L_STD = 0.5, 0.25  # normalisation of L / 100 in the encoder


@dataclass
class ColorizationConfig:
    ab_side: int = 8  # side of the predicted ab map (upsampled to the image)
    decoder_hidden_dim: int = 512
    huber_delta: float = 0.0  # 0: squared error; > 0: Huber loss on ab / 110
    colour_augment: bool = False  # keep the run's recipe (colour jitter corrupts the target)

    def __post_init__(self) -> None:
        if self.ab_side < 1 or self.decoder_hidden_dim < 1:
            raise ValueError("ab_side and decoder_hidden_dim must be >= 1")
        if self.huber_delta < 0:
            raise ValueError("huber_delta must be >= 0")


def lightness_spec(spec: Any) -> Any:
    """The RGB image spec turned into one whose backbone sees only L (normalised)."""
    if getattr(spec, "in_channels", None) != 3:
        raise SelfsupError(
            "colorization predicts colour and needs RGB images; this data has "
            f"{getattr(spec, 'in_channels', 'no image')} channel(s) (grey data such as digits "
            "has nothing to predict): train it on colour images, e.g. cifar10 or folder:DIR"
        )
    return dataclasses.replace(spec, lightness=True, mean=(L_MEAN,), std=(L_STD,))


@register
class Colorization(Method):
    """Encoder f on L, decoder d; loss ab_regression(d(f(L)), ab / 110) over pixels."""

    name = "colorization"
    family = "pretext"
    paper = "Zhang, Isola & Efros 2016, colorization"
    summary = "predict the colour (Lab a, b) from the lightness"
    Config = ColorizationConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1.92e-4,
        "weight_decay": 1e-3,
        "betas": (0.9, 0.99),
    }
    optimiser_reference = "the paper's (Adam 3e-5 at batch 40, betas 0.9 / 0.99, weight decay 1e-3)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "light"
    num_views = 1  # one augmented image
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {"ab_side": 56, "decoder_hidden_dim": 2048}
    }

    def __init__(self, spec: Any, cfg: ColorizationConfig, augment: Any):
        spec = lightness_spec(spec)
        super().__init__(spec, cfg, augment)  # builds the L-only encoder from the spec
        if augment is not None and not cfg.colour_augment:
            from selfsup.augment import build_augment

            self.augment = build_augment("light", augment.image_size, 3)
        side = cfg.ab_side
        self.decoder = nn.Sequential(
            nn.Linear(self.encoder.out_dim, cfg.decoder_hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.decoder_hidden_dim, 2 * side * side),
        )

    def predict_ab(self, rgb: torch.Tensor) -> torch.Tensor:
        """Predicted ab / 110 (N, 2, H, W) of RGB images (N, 3, H, W), from their L only."""
        side = self.cfg.ab_side
        features = self.encoder(rgb)
        self.watch(F.normalize(features, dim=1))
        coarse = self.decoder(features).view(-1, 2, side, side)
        return F.interpolate(coarse, size=rgb.shape[-2:], mode="bilinear", align_corners=False)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rgb = views[0]
        target = rgb_to_lab(rgb)[:, 1:] / AB_SCALE
        return ab_regression(self.predict_ab(rgb), target, self.cfg.huber_delta), {}

    def figures(self, batch: Batch) -> dict[str, Any]:
        """Rows: the input, its L, the colours predicted from L (held-out images)."""
        from selfsup.augment.ops import to_float

        rgb = to_float(batch["image"])
        lab = rgb_to_lab(rgb)
        grey = lab.clone()
        grey[:, 1:] = 0
        pred = lab.clone()
        pred[:, 1:] = self.predict_ab(rgb) * AB_SCALE
        rows = [rgb, lab_to_rgb(grey), lab_to_rgb(pred)]
        grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # (3, 3H, N*W)
        return {"colorization": (grid.permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)}
