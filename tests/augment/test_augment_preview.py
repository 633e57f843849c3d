"""The augmented-view grid of the report: its shape, the clean column, seeded views."""

import numpy as np
import torch

from selfsup.augment import build_augment
from selfsup.augment.preview import GAP, TILE, augmented_grid


def test_grid_shape_clean_column_and_seed():
    images = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    augment = build_augment("digits", 8, 1)
    grid = augmented_grid(images, augment, num_views=4)
    assert grid.shape == (3 * TILE + 2 * GAP, 5 * TILE + 4 * GAP, 3) and grid.dtype == np.uint8
    first = grid[:TILE, :TILE, 0]
    expected = images[0, 0].repeat_interleave(TILE // 8, 0).repeat_interleave(TILE // 8, 1)
    assert np.array_equal(first, expected.numpy())
    assert np.array_equal(grid, augmented_grid(images, augment, num_views=4))
