"""Counting (Noroozi, Pirsiavash & Favaro, ICCV 2017, "Representation learning by learning to
count"): the features of an image are counts of visual primitives, so the counting vector of
the image equals the sum of the counting vectors of its tiles.

Each image x (the run's view of it) is downsampled by 2 (D x) and cut into its four quadrants
(T_1..T_4 x, each of D x's size); one network phi, the encoder followed by a head with a final
ReLU (counts are non-negative: the paper's last layer is a ReLU), maps each to a counting vector,
and the loss (`selfsup.losses.counting_loss`, the paper's equation 4) is

    |phi(D x) - sum_j phi(T_j x)|^2 + max(0, M - |phi(D y) - sum_j phi(T_j x)|^2)

with y the next image of the batch (another image, as the paper's), M = 10. The second term
keeps phi from counting nothing. As in the paper, the downsampling method is drawn at random
for each batch (bilinear or bicubic, both antialiased, or area averaging; the paper also draws
Lanczos, which torch lacks) so that the network cannot tell D x from the tiles by its
interpolation's traces and satisfy the loss by that shortcut.

Reference: the authors' (Caffe) code is not public; clvrai/Representation-Learning-by-Learning-
to-Count (TensorFlow) gives M = 10 (`model.py`) and Adam at lr 1e-4, batch 16, gradients
clipped at 20 (`trainer.py`). Paper settings (ImageNet): AlexNet to conv5, then fc6 4096, fc7
4096, fc8 1000 counts with ReLU; 114 px tiles of 228 px crops; random greyscale. Here the
encoder is the run's backbone and the head an MLP (`head_hidden_dim`) to `count_dim` counts.
Not done: the paper's random greyscale of the input (the run's augmentation makes the views).
The exported representation is the encoder's pooled feature, below the head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.losses import counting_terms
from selfsup.losses.counting import PAPER_MARGIN
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import classifier_head

DOWNSAMPLINGS = ("bilinear", "bicubic", "area")


@dataclass
class CountingConfig:
    count_dim: int = 1000  # size of the counting vector (the paper's fc8: 1000)
    head_hidden_dim: int = 1024  # the MLP from the pooled feature to the counts; 0: linear
    margin: float = PAPER_MARGIN  # M of the contrastive term (the paper: 10)
    downsample: str = "random"  # random (the paper's) | bilinear | bicubic | area
    # > 0: D x and the tiles are resized (bilinear) to this side before the encoder, so that
    # the encoder of tiny images trains at the side it is evaluated at; 0: as cut (the paper's)
    piece_size: int = 0

    def __post_init__(self) -> None:
        if self.count_dim < 1 or self.head_hidden_dim < 0:
            raise ValueError("count_dim must be >= 1 and head_hidden_dim >= 0 (0: linear)")
        if self.piece_size < 0:
            raise ValueError("piece_size must be >= 0 (0: the pieces as cut)")
        if not self.margin > 0:
            raise ValueError("margin must be > 0")
        if self.downsample not in ("random", *DOWNSAMPLINGS):
            raise ValueError(
                f"downsample must be random or one of {', '.join(DOWNSAMPLINGS)}, "
                f"got {self.downsample!r}"
            )


def check_tileable(height: int, width: int) -> None:
    """Refuse images that do not split into 2x2 tiles of the downsampled image's size."""
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise SelfsupError(
            f"method counting cuts each image into 2x2 tiles of half its side, so the sides must "
            f"be even and at least 2 pixels; these views are {height}x{width}: choose another "
            f"size with --image-size"
        )


def downsample(x: torch.Tensor, mode: str) -> torch.Tensor:
    """x (B, C, H, W) at half its side, by `mode` (antialiased where torch offers it)."""
    size = (x.shape[-2] // 2, x.shape[-1] // 2)
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)


def quadrants(x: torch.Tensor) -> torch.Tensor:
    """The four tiles of x (B, C, H, W) as (B, 4, C, H/2, W/2): top-left, top-right,
    bottom-left, bottom-right."""
    b, c, h, w = x.shape
    tiles = x.reshape(b, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(b, 4, c, h // 2, w // 2)


@register
class Counting(Method):
    """phi = ReLU(head(encoder(.))); phi(D x) = sum_j phi(T_j x), phi(D y) far from it."""

    name = "counting"
    family = "pretext"
    paper = "Noroozi, Pirsiavash & Favaro 2017, learning to count"
    summary = "an image's feature counts equal the sum of its four tiles' counts"
    Config = CountingConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "betas": (0.9, 0.999),
    }
    optimiser_reference = (
        "clvrai's re-implementation (Adam 1e-4 at batch 16, no weight decay); the paper's own "
        "(Caffe) setting is not published"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "light"
    num_views = 1

    def __init__(self, spec: Any, cfg: CountingConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        check_tileable(*(augment.view_size(0) if augment is not None else spec.height_width))
        self.head = nn.Sequential(
            classifier_head(self.encoder.out_dim, cfg.head_hidden_dim, cfg.count_dim),
            nn.ReLU(),
        )

    def counts(self, images: torch.Tensor) -> torch.Tensor:
        """The counting vectors phi (N, count_dim) of images in [0, 1]."""
        return self.head(self.encoder(images))

    def views(self, batch: Batch) -> list[torch.Tensor]:
        x = self.augment(batch["image"], view=0)
        check_tileable(*x.shape[-2:])
        mode = self.cfg.downsample
        if mode == "random":  # drawn on the host's generator: no wait for the device
            mode = DOWNSAMPLINGS[int(torch.randint(len(DOWNSAMPLINGS), ()))]
        small, tiles = downsample(x, mode), quadrants(x)
        side = self.cfg.piece_size
        if side > 0:
            b = x.shape[0]
            small = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
            tiles = F.interpolate(
                tiles.flatten(0, 1), size=(side, side), mode="bilinear", align_corners=False
            ).unflatten(0, (b, 4))
        return [small, tiles]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        small, tiles = views
        b = small.shape[0]
        if b < 2:
            raise SelfsupError(
                "method counting contrasts each image with another of its batch: it needs "
                "batches of at least 2 images (per process)"
            )
        features = self.encoder(torch.cat([small, tiles.flatten(0, 1)]))
        self.watch(F.normalize(features[:b], dim=1))
        phi = self.head(features)
        whole, parts = phi[:b], phi[b:].view(b, 4, -1)
        other = whole.roll(1, dims=0)  # phi(D y): y is the next image of the batch
        pair, unpair = counting_terms(whole, parts, other, self.cfg.margin)
        figures = {
            "pair": pair.detach(),
            "unpair": unpair.detach(),
            "count_mean": whole.detach().mean(),
        }
        return pair + unpair, figures
