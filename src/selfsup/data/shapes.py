"""Generated dSprites-like shapes whose factors of variation are all known, for measuring
disentanglement (MIG, DCI): binary images of one white shape on black, every combination of
shape (square, ellipse, heart), scale, rotation, x and y on a grid.

dSprites (deepmind/dsprites-dataset) is the grid `64`: 64x64 images, 3 shapes x 6 scales
(0.5 to 1) x 40 rotations x 32 x 32 positions = 737,280 images (3 GB in memory). The default
grid `32` is sized for a CPU: 32x32 images, 3 x 6 x 10 rotations x 16 x 16 positions = 46,080
images (47 MB). The shapes are drawn by their implicit equations at the pixel centres (binary,
as dSprites), positions one pixel apart in the image's middle; rotations are
2 pi k / rotations, k = 0..rotations-1 (dSprites repeats 0 as 2 pi).
A seeded 20 % of the grid, stratified by shape, is the held-out split; the shape is also the
class label, so the label protocols (kNN, linear) measure the shape factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits, FactorLabels, holdout_positions
from selfsup.errors import SelfsupError

SHAPES = ("square", "ellipse", "heart")
FACTORS = ("shape", "scale", "rotation", "x", "y")
HALF_EXTENT = 0.18  # a scale-1 shape's half width, as a fraction of the image side
HELDOUT_FRACTION = 0.2
HELDOUT_SEED = 0


@dataclass(frozen=True)
class ShapesGrid:
    """The factor grid: image side and the number of levels of scale, rotation and position."""

    size: int = 32
    scales: int = 6
    rotations: int = 10
    positions: int = 16

    @property
    def levels(self) -> tuple[int, ...]:
        """The number of levels of each factor of FACTORS."""
        return (len(SHAPES), self.scales, self.rotations, self.positions, self.positions)

    def __len__(self) -> int:
        return math.prod(self.levels)


GRIDS = {"32": ShapesGrid(), "64": ShapesGrid(64, 6, 40, 32)}


def all_factors(grid: ShapesGrid) -> Tensor:
    """Every combination of factor levels, int64 (N, 5), the last factor (y) fastest."""
    axes = [torch.arange(n) for n in grid.levels]
    return torch.cartesian_prod(*axes)


def geometry(grid: ShapesGrid, factors: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Centre x, centre y (pixels), half extent (pixels) and angle (radians) of each row.
    Positions are one pixel apart, centred in the image (a rotated scale-1 square stays
    inside at every position)."""
    f = factors.to(torch.float32)
    scale = 0.5 + 0.5 * f[:, 1] / max(grid.scales - 1, 1)  # dSprites: 0.5 to 1
    half = HALF_EXTENT * grid.size * scale
    first = (grid.size - (grid.positions - 1)) / 2
    angle = 2 * math.pi * f[:, 2] / grid.rotations
    return first + f[:, 3], first + f[:, 4], half, angle


def draw(grid: ShapesGrid, factors: Tensor) -> Tensor:
    """Binary images (N, size, size), True inside the shape, drawn by the shapes' implicit
    equations at the pixel centres."""
    centres = torch.arange(grid.size, dtype=torch.float32) + 0.5
    cx, cy, half, angle = geometry(grid, factors)
    dx = centres[None, None, :] - cx[:, None, None]  # (n, 1, W)
    dy = centres[None, :, None] - cy[:, None, None]  # (n, H, 1)
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    h = half[:, None, None]
    u = (cos * dx + sin * dy) / h  # shape coordinates: the shape lies within [-1, 1]
    v = (-sin * dx + cos * dy) / h
    shape = factors[:, 0][:, None, None]
    square = (u.abs() <= 0.8) & (v.abs() <= 0.8)
    ellipse = u.pow(2) + (v / 0.5).pow(2) <= 1
    x, y = 1.2 * u, -1.2 * v + 0.15  # the heart curve, point down in image coordinates
    heart = (x.pow(2) + y.pow(2) - 1).pow(3) - x.pow(2) * y.pow(3) <= 0
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))


def render(grid: ShapesGrid, factors: Tensor) -> Tensor:
    """Binary uint8 images (N, 1, size, size), 255 inside the shape, of int64 factor rows:
    each (shape, scale, rotation) is drawn once at position (0, 0) and moved by whole pixels
    (the same images as `draw` at every position, as positions are one pixel apart)."""
    if factors.dim() != 2 or factors.shape[1] != len(FACTORS):
        raise ValueError(f"factors must be (N, {len(FACTORS)}); got {tuple(factors.shape)}")
    _, scales, rotations, *_ = grid.levels
    kinds = torch.cartesian_prod(*(torch.arange(n) for n in grid.levels[:3]))
    at_origin = torch.cat([kinds, torch.zeros(len(kinds), 2, dtype=torch.long)], 1)
    sprites = draw(grid, at_origin).to(torch.uint8) * 255
    which = (factors[:, 0] * scales + factors[:, 1]) * rotations + factors[:, 2]
    out = torch.empty(len(factors), 1, grid.size, grid.size, dtype=torch.uint8)
    for x in factors[:, 3].unique().tolist():
        for y in factors[:, 4].unique().tolist():
            rows = ((factors[:, 3] == x) & (factors[:, 4] == y)).nonzero()[:, 0]
            if len(rows):
                moved = sprites.roll((y, x), dims=(1, 2))
                out[rows, 0] = moved[which[rows]]
    return out


def shapes_data(grid: ShapesGrid, name: str = "shapes") -> ImageData:
    """The whole grid as one ImageData, the shape as its label, all factors known."""
    factors = all_factors(grid)
    return ImageData(
        render(grid, factors),
        factors[:, 0].clone(),
        list(SHAPES),
        name,
        factors=FactorLabels(factors, FACTORS),
    )


def load_shapes(path: str | None, options: DataConfig) -> DataSplits:
    """`shapes[:32|64]`: the generated grid and its seeded, shape-stratified held-out 20 %."""
    key = (path or "32").strip()
    if key not in GRIDS:
        raise SelfsupError(
            f"shapes:{key}: choose the grid 32 (32x32 images, sized for a CPU; the default) or "
            "64 (dSprites' 64x64 grid, 737,280 images)"
        )
    data = shapes_data(GRIDS[key], f"shapes:{key}")
    train, test = holdout_positions(len(data), data.labels, HELDOUT_FRACTION, HELDOUT_SEED)
    return DataSplits(train=data.subset(train), test=data.subset(test))
