"""A picture of what a recipe does: each image beside some of its augmented views, as one grid,
so that a run report can show a user the augmentation they train with."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.augment.pipeline import Augment, clean_transform
from selfsup.errors import SelfsupError

MIN_TILE = 64  # tiles smaller than this (CIFAR's 32 px) are enlarged by a whole factor
GAP = 2  # white pixels between tiles


def augmented_grid(
    images: Tensor, augment: Augment, num_views: int = 4, seed: int = 0
) -> np.ndarray:
    """uint8 (rows, cols, 3) grid: one row per image, the clean image then num_views views.

    The clean image is the evaluation input (resized to the Augment's image size); view j is
    the recipe's view j, cycling through the recipe's views (byol: 0, 1, 0, 1). Every tile is
    enlarged (nearest neighbour) to a common tile size, the largest image among them, made at
    least MIN_TILE pixels by a whole factor; a smaller view (multi-crop's local ones) is scaled
    up to fit, centred on white; grey images are repeated over RGB. Views come from a generator
    seeded with `seed`, so the grid is reproducible and the global RNG is left alone.
    """
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else "no tensor"
        raise SelfsupError(f"augmented_grid wants uint8 images (n, C, H, W); got {got}")
    if len(images) == 0:
        raise SelfsupError("augmented_grid needs at least one image; got none")
    if isinstance(num_views, bool) or not isinstance(num_views, int) or num_views < 1:
        raise SelfsupError(f"augmented_grid needs num_views >= 1; got {num_views!r}")
    generator = torch.Generator().manual_seed(seed)
    columns = [clean_transform((augment.height, augment.width))(images)]
    views = len(augment.recipe.views)
    columns += [augment(images, view=j % views, generator=generator) for j in range(num_views)]
    tile_h = max(c.shape[2] for c in columns)
    tile_w = max(c.shape[3] for c in columns)
    scale = max(1, math.ceil(MIN_TILE / max(tile_h, tile_w)))
    tile_h, tile_w = tile_h * scale, tile_w * scale
    n = len(images)
    grid = torch.full(
        (3, n * tile_h + (n - 1) * GAP, len(columns) * tile_w + (len(columns) - 1) * GAP),
        255,
        dtype=torch.uint8,
    )
    for j, column in enumerate(columns):
        tiles = _fit(_to_uint8_rgb(column.cpu()), tile_h, tile_w)
        for i in range(n):
            top, left = i * (tile_h + GAP), j * (tile_w + GAP)
            grid[:, top : top + tile_h, left : left + tile_w] = tiles[i]
    return grid.permute(1, 2, 0).contiguous().numpy()


def _to_uint8_rgb(x: Tensor) -> Tensor:
    """float [0, 1] (n, C, H, W) -> uint8 (n, 3, H, W), grey repeated over the channels;
    of other channel counts (RGB-D) the first three channels, or the first one, are shown."""
    x = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    if x.shape[1] not in (1, 3):
        x = x[:, :3] if x.shape[1] > 3 else x[:, :1]
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _fit(x: Tensor, height: int, width: int) -> Tensor:
    """uint8 (n, 3, h, w) scaled up (nearest) to fit height x width, centred on white."""
    h, w = x.shape[2:]
    factor = min(height / h, width / w)
    size = (min(height, round(h * factor)), min(width, round(w * factor)))
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="nearest-exact")
    if size == (height, width):
        return x
    out = torch.full((len(x), 3, height, width), 255, dtype=torch.uint8)
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    out[:, :, top : top + size[0], left : left + size[1]] = x
    return out
