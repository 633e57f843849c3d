"""Relative patch position (Doersch, Gupta & Efros, ICCV 2015): where is the second patch?

A 3x3 grid is laid over each image; the centre patch and one of its eight neighbours (chosen at
random per image) are cut out with a gap between the cells and a random jitter of each patch
inside its cell, so that the task cannot be solved by continuing edges or lines across patch
borders. The backbone encodes both patches (shared weights); their concatenated features go to
a classifier of the 8 positions (label = the neighbour's index in row-major order with the
centre skipped: 0 top-left, 1 top, 2 top-right, 3 left, 4 right, 5 bottom-left, 6 bottom,
7 bottom-right). The loss is a plain cross-entropy (`torch.nn.functional.cross_entropy`), so
there is no loss module of its own; the pretext accuracy is logged as `pretext_accuracy`.

Paper (ImageNet): 96 px patches, a 48 px gap, up to 7 px of jitter, images resized to between
150K and 450K pixels; chromatic aberration handled by dropping colour / projecting out the
green-magenta axis. It gives no CIFAR setting: the defaults here are 8 px patches, a 1 px gap
and 1 px of jitter (a 30 px grid; a 32 px image is resized to it). Chromatic aberration is not
handled here (small images, and the run's augmentation already converts to grey at random).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.augment.pretext import grid_tiles, resize_tiles
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import classifier_head

CENTRE = 4
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)  # grid cells of the 8 labels, row-major without the centre


@dataclass
class RelativePositionConfig:
    tile: int = 8  # patch side in pixels
    gap: int = 1  # pixels always left between neighbouring patches
    jitter: int = 1  # random extra offset of each patch inside its cell (pixels)
    head_hidden_dim: int = 512  # the classifier on the two concatenated features; 0: linear
    tile_resize: int = 0  # > 0: patches resized to this side before the encoder (tiny images)

    def __post_init__(self) -> None:
        if self.tile < 1 or self.gap < 0 or self.jitter < 0:
            raise ValueError("tile must be >= 1 pixel, gap and jitter >= 0")
        if self.head_hidden_dim < 0:
            raise ValueError("head_hidden_dim must be >= 0 (0 is a linear head)")


def patch_pairs(
    x: torch.Tensor, tile: int, gap: int, jitter: int, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre patch and the neighbour named by each label (0..7), each (B, C, tile, tile)."""
    tiles = grid_tiles(x, 3, tile, gap, jitter)  # (B, 9, C, tile, tile)
    rows = torch.arange(x.shape[0], device=x.device)
    cells = torch.tensor(NEIGHBOURS, device=x.device)[labels]
    return tiles[:, CENTRE], tiles[rows, cells]


@register
class RelativePosition(Method):
    """Encoder f, head h; loss CE(h([f(centre), f(neighbour)]), position of the neighbour)."""

    name = "relative_position"
    family = "pretext"
    paper = "Doersch, Gupta & Efros 2015, context prediction"
    summary = "predict where the second patch lies relative to the first"
    Config = RelativePositionConfig
    optimiser_reference = "ImageNet only (Caffe); no setting we could check: the library's"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {"tile": 96, "gap": 48, "jitter": 7, "head_hidden_dim": 4096}
    }

    def __init__(self, spec: Any, cfg: RelativePositionConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.head = classifier_head(2 * self.encoder.out_dim, cfg.head_hidden_dim, 8)

    def views(self, batch: Batch) -> list[torch.Tensor]:
        x = self.augment(batch["image"], view=0)
        labels = torch.randint(0, 8, (x.shape[0],)).to(x.device)
        centre, neighbour = patch_pairs(x, self.cfg.tile, self.cfg.gap, self.cfg.jitter, labels)
        side = self.cfg.tile_resize
        return [resize_tiles(centre, side), resize_tiles(neighbour, side), labels]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        centre, neighbour, labels = views
        b = centre.shape[0]
        features = self.encoder(torch.cat([centre, neighbour]))
        self.watch(F.normalize(features[:b], dim=1))
        logits = self.head(torch.cat([features[:b], features[b:]], dim=1))
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return F.cross_entropy(logits, labels), {"pretext_accuracy": accuracy}
