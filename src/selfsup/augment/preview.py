"""A picture of what a recipe does: samples beside augmented views of them, for the report."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

TILE = 64  # pixels per tile side
GAP = 4  # white pixels between tiles


def augmented_grid(images: torch.Tensor, augment, num_views: int = 4, seed: int = 0) -> np.ndarray:
    """uint8 (rows, cols, 3): one row per sample, the clean image then `num_views` augmented
    views of it, each tile upscaled to TILE pixels, with white gaps; views drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    clean = images.float().div(255)
    columns = [clean] + [augment(images, view=v, generator=generator) for v in range(num_views)]
    tiles = [_tiles(c) for c in columns]
    n = len(images)
    height = n * TILE + (n - 1) * GAP
    width = len(tiles) * TILE + (len(tiles) - 1) * GAP
    grid = np.full((height, width, 3), 255, dtype=np.uint8)
    for col, column in enumerate(tiles):
        for row in range(n):
            y, x = row * (TILE + GAP), col * (TILE + GAP)
            grid[y : y + TILE, x : x + TILE] = column[row]
    return grid


def _tiles(x: torch.Tensor) -> np.ndarray:
    """float (n, C, H, W) in [0, 1] -> uint8 (n, TILE, TILE, 3), nearest upscaling."""
    x = F.interpolate(x.float(), size=(TILE, TILE), mode="nearest")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
