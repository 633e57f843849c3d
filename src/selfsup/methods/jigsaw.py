"""Jigsaw puzzles (Noroozi & Favaro, ECCV 2016): recognise which permutation shuffled the tiles.

Each image is cut into a grid of tiles (a gap between cells and a random per-tile jitter, so
that edges and textures do not continue across tiles); the tiles are shuffled by one of a fixed
set of permutations chosen greedily for large Hamming distance (seeded,
`selfsup.augment.pretext.maximal_hamming_permutations`); the backbone encodes each tile alone
(shared weights, a "context-free network"), the features are concatenated in shuffled order and
a classifier predicts the permutation's index. The loss is a plain cross-entropy over the set
(`torch.nn.functional.cross_entropy`), so there is no loss module of its own; the pretext
accuracy is logged as `pretext_accuracy`.

Paper (ImageNet): 225 px crops in a 3x3 grid of 75 px cells, a 64 px tile at a random place in
each (up to 11 px of jitter), 1000 permutations (100 and more studied; 1000 best), per-tile
normalisation and colour jitter. It gives no CIFAR setting: the defaults here are a 3x3 grid of
6 px tiles with a 2 px gap and 2 px jitter (30 px: a 32 px image is resized to it) and 100
permutations. At 8 px digits use a 2x2 grid of 3 px tiles with 1 px of jitter and no gap (the
8 px image exactly), with at most 4! = 24 permutations. Not done here: the paper's per-tile
normalisation and colour jitter (the run's augmentation applies to the whole image first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.augment.pretext import grid_tiles, maximal_hamming_permutations, resize_tiles
from selfsup.errors import SelfsupError
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import classifier_head


@dataclass
class JigsawConfig:
    grid: int = 3  # tiles per side
    tile: int = 6  # tile side in pixels
    gap: int = 2  # pixels always left between neighbouring tiles
    jitter: int = 2  # random extra offset of each tile inside its cell (pixels)
    num_permutations: int = 100
    permutation_seed: int = 0
    head_hidden_dim: int = 512  # the classifier on the concatenated tile features; 0: linear
    tile_resize: int = 0  # > 0: tiles resized to this side before the encoder (tiny images)

    def __post_init__(self) -> None:
        if not 2 <= self.grid <= 3:
            raise ValueError("grid must be 2 or 3 (tiles per side)")
        if self.tile < 1 or self.gap < 0 or self.jitter < 0:
            raise ValueError("tile must be >= 1 pixel, gap and jitter >= 0")
        most = math.factorial(self.grid * self.grid)
        if not 2 <= self.num_permutations <= most:
            raise ValueError(
                f"num_permutations must be in [2, {most}] for a {self.grid}x{self.grid} grid"
            )
        if self.head_hidden_dim < 0:
            raise ValueError("head_hidden_dim must be >= 0 (0 is a linear head)")


def shuffle_tiles(tiles: torch.Tensor, permutations: torch.Tensor, labels: torch.Tensor) -> Any:
    """Tiles (B, n, ...) reordered so that position j of sample b shows tile
    permutations[labels[b], j]."""
    order = permutations[labels]  # (B, n)
    rows = torch.arange(tiles.shape[0], device=tiles.device)[:, None]
    return tiles[rows, order]


@register
class Jigsaw(Method):
    """Encoder f on each tile, head h; loss CE(h([f(t_p(1)), ..., f(t_p(n))]), index of p)."""

    name = "jigsaw"
    family = "pretext"
    paper = "Noroozi & Favaro 2016, jigsaw puzzles"
    summary = "recognise which permutation shuffled the tiles"
    Config = JigsawConfig
    optimiser_reference = "ImageNet only (Caffe); no setting we could check: the library's"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {
            "grid": 3,
            "tile": 64,
            "gap": 0,
            "jitter": 11,
            "num_permutations": 1000,
            "head_hidden_dim": 4096,
        }
    }

    def __init__(self, spec: Any, cfg: JigsawConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        n = cfg.grid * cfg.grid
        perms = maximal_hamming_permutations(n, cfg.num_permutations, cfg.permutation_seed)
        # a buffer: saved with the method, so a resumed run keeps the same set
        self.register_buffer("permutations", torch.from_numpy(perms))
        self.head = classifier_head(n * self.encoder.out_dim, cfg.head_hidden_dim, len(perms))

    def views(self, batch: Batch) -> list[torch.Tensor]:
        x = self.augment(batch["image"], view=0)
        c = self.cfg
        tiles = resize_tiles(grid_tiles(x, c.grid, c.tile, c.gap, c.jitter), c.tile_resize)
        labels = torch.randint(0, len(self.permutations), (x.shape[0],)).to(x.device)
        return [shuffle_tiles(tiles, self.permutations, labels), labels]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        tiles, labels = views
        b = tiles.shape[0]
        if b < 1:
            raise SelfsupError("jigsaw needs a non-empty batch")
        features = self.encoder(tiles.flatten(0, 1))  # (B * n, D): one tile at a time
        self.watch(F.normalize(features[:b], dim=1))
        logits = self.head(features.reshape(b, -1))
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return F.cross_entropy(logits, labels), {"pretext_accuracy": accuracy}
