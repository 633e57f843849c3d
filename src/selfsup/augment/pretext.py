"""Geometry of the pretext tasks: the four rotations, tiles on a jittered grid, and the fixed
permutation sets of jigsaw puzzles (all batched tensor ops, seeded where random)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.errors import SelfsupError


def four_rotations(x: Tensor) -> tuple[Tensor, Tensor]:
    """Every image of x (B, C, S, S) rotated by 0, 90, 180 and 270 degrees (counter-clockwise).

    Returns the (4B, C, S, S) batch, ordered rotation-major (all 0 degree images first), and
    the label of each row (0..3, the number of quarter turns), as RotNet (Gidaris et al. 2018)
    feeds all four rotations of an image in the same batch.
    """
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise SelfsupError(
            f"rotation needs square images (B, C, S, S) so that all four rotations stack; got "
            f"{tuple(x.shape)}: use a cropping augmentation recipe"
        )
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return rotated, labels


def grid_side(grid: int, tile: int, gap: int, jitter: int) -> int:
    """Side of the square region a grid of `grid` x `grid` cells covers: each cell holds a tile
    plus the gap plus the jitter range, so neighbouring tiles stay at least `gap` apart."""
    return grid * (tile + gap + jitter)


def grid_tiles(
    x: Tensor,
    grid: int,
    tile: int,
    gap: int,
    jitter: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Tiles (B, grid*grid, C, tile, tile) cut from a grid over each image, in row-major order.

    The image is first resized (bilinear) to the grid's side when it differs. Within its cell
    each tile is placed at gap/2 plus a random offset in [0, jitter] per image, tile and axis,
    so that tiles never touch (at least `gap` pixels apart) and edges do not line up: the gap
    and jitter of Noroozi & Favaro (2016) and Doersch et al. (2015) against trivial shortcuts.
    """
    if grid < 1 or tile < 1 or gap < 0 or jitter < 0:
        raise SelfsupError(
            f"grid tiles need grid >= 1, tile >= 1, gap >= 0, jitter >= 0; got grid={grid}, "
            f"tile={tile}, gap={gap}, jitter={jitter}"
        )
    if x.dim() != 4:
        raise SelfsupError(f"grid tiles need images (B, C, H, W); got {tuple(x.shape)}")
    side = grid_side(grid, tile, gap, jitter)
    if x.shape[-2:] != (side, side):
        x = F.interpolate(x.float(), size=(side, side), mode="bilinear", align_corners=False)
    b, c = x.shape[:2]
    n = grid * grid
    cell = tile + gap + jitter
    offsets = torch.randint(0, jitter + 1, (b, n, 2), generator=generator, device="cpu")
    offsets = offsets.to(x.device)
    cells = torch.arange(n, device=x.device)
    top = (cells // grid) * cell + gap // 2 + offsets[..., 0]  # (B, n)
    left = (cells % grid) * cell + gap // 2 + offsets[..., 1]
    span = torch.arange(tile, device=x.device)
    rows = (top[..., None] + span)[..., :, None]  # (B, n, tile, 1)
    cols = (left[..., None] + span)[..., None, :]  # (B, n, 1, tile)
    flat = (rows * side + cols).reshape(b, 1, n * tile * tile).expand(b, c, -1)
    tiles = x.reshape(b, c, side * side).gather(2, flat)
    return tiles.reshape(b, c, n, tile, tile).permute(0, 2, 1, 3, 4)


def maximal_hamming_permutations(num_tiles: int, count: int, seed: int = 0) -> np.ndarray:
    """`count` distinct permutations of `num_tiles` tiles, chosen greedily to stay far apart.

    Noroozi & Favaro (2016, algorithm 1) pick, one at a time, the permutation whose Hamming
    distance to the set chosen so far is largest. Here that distance is the minimum over the
    set (so each pick is as far as possible from its nearest chosen neighbour), ties broken by
    the larger average distance, then by a seeded random order. The first pick is seeded
    random. Returns an int64 array (count, num_tiles).
    """
    total = math.factorial(num_tiles)
    if not 1 <= count <= total:
        raise SelfsupError(
            f"a jigsaw of {num_tiles} tiles has {total} permutations; asked for {count}"
        )
    if num_tiles > 10:
        raise SelfsupError(f"at most 10 tiles (3x3 grids) are supported; got {num_tiles}")
    rng = np.random.default_rng(seed)
    every = np.array(list(itertools.permutations(range(num_tiles))), dtype=np.int8)
    every = every[rng.permutation(total)]  # the seeded tie-break order
    chosen = [0]
    min_dist = (every != every[0]).sum(1)
    sum_dist = min_dist.astype(np.int64)
    for _ in range(count - 1):
        score = min_dist.astype(np.int64) * (num_tiles * count + 1) + sum_dist
        pick = int(np.argmax(score))
        chosen.append(pick)
        dist = (every != every[pick]).sum(1)
        min_dist = np.minimum(min_dist, dist)
        sum_dist += dist
    return every[chosen].astype(np.int64)


def resize_tiles(tiles: Tensor, side: int) -> Tensor:
    """Tiles (..., C, t, t) resized (bilinear) to (..., C, side, side); side 0 keeps them.

    At tiny images (8 px digits) a tile of 3-4 px is far smaller than the images the encoder is
    evaluated on; resizing tiles to the image size keeps the training scale close to it."""
    if side <= 0 or tiles.shape[-1] == side:
        return tiles
    lead = tiles.shape[:-3]
    flat = tiles.reshape(-1, *tiles.shape[-3:])
    out = F.interpolate(flat, size=(side, side), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])
