"""augmented_grid: the clean image then its views, one row per image, in a white-gapped grid."""

import numpy as np
import pytest
import torch

from selfsup.augment import augmented_grid, build_augment, clean_transform
from selfsup.augment.preview import GAP
from selfsup.errors import SelfsupError


def uint8_images(n: int, channels: int, height: int, width: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (n, channels, height, width or height)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def tile(grid: np.ndarray, row: int, col: int, h: int, w: int) -> np.ndarray:
    top, left = row * (h + GAP), col * (w + GAP)
    return grid[top : top + h, left : left + w]


def test_shape_and_clean_first_column():
    """32 px tiles are enlarged 2x to 64 px; the first column is the clean image."""
    x = uint8_images(3, 3, 32)
    state = torch.get_rng_state()
    grid = augmented_grid(x, build_augment("simclr-cifar", 32, 3), num_views=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert grid.dtype == np.uint8 and grid.shape == (3 * 64 + 2 * GAP, 5 * 64 + 4 * GAP, 3)
    for i in range(3):
        expected = x[i].permute(1, 2, 0).numpy().repeat(2, axis=0).repeat(2, axis=1)
        assert np.array_equal(tile(grid, i, 0, 64, 64), expected)
        assert not np.array_equal(tile(grid, i, 1, 64, 64), expected)
    assert (grid[64 : 64 + GAP] == 255).all() and (grid[:, 64 : 64 + GAP] == 255).all()


def test_first_column_is_the_resized_clean_image():
    x = uint8_images(2, 3, 100)
    grid = augmented_grid(x, build_augment("simclr", 80, 3), num_views=2)
    assert grid.shape == (2 * 80 + GAP, 3 * 80 + 2 * GAP, 3)
    clean = (clean_transform(80)(x) * 255).round().to(torch.uint8)
    assert np.array_equal(tile(grid, 1, 0, 80, 80), clean[1].permute(1, 2, 0).numpy())


def test_seeded_and_grey():
    x = uint8_images(2, 1, 28)
    augment = build_augment("digits", 28, 1)
    a = augmented_grid(x, augment, num_views=3, seed=1)
    assert np.array_equal(a, augmented_grid(x, augment, num_views=3, seed=1))
    assert not np.array_equal(a, augmented_grid(x, augment, num_views=3, seed=2))
    assert a.shape == (2 * 84 + GAP, 4 * 84 + 3 * GAP, 3)  # 28 px x 3 = 84
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


def test_views_cycle_and_small_views_fill_the_tile():
    """byol has 2 views and multicrop's local ones are smaller: all fill a common tile."""
    x = uint8_images(1, 3, 48)
    assert augmented_grid(x, build_augment("byol", 32, 3), num_views=5).shape == (64, 6 * 66 - 2, 3)
    augment = build_augment("multicrop", 112, 3)
    assert augment.view_size(3) == (48, 48)
    grid = augmented_grid(x, augment, num_views=4)
    assert grid.shape == (112, 5 * 112 + 4 * GAP, 3)
    local = tile(grid, 0, 4, 112, 112)  # view 3, a 48 px local view enlarged to the tile
    assert not (local == 255).all(axis=-1).all(axis=0).any()  # no white letterbox column


def test_non_square_images_are_letterboxed():
    """(24, 40): the clean tile is 24 x 40 (enlarged 2x), square crops fit it centred on white."""
    x = uint8_images(1, 3, 30, 50)
    grid = augmented_grid(x, build_augment("light", (24, 40), 3), num_views=1)
    assert grid.shape == (48, 2 * 80 + GAP, 3)
    view = tile(grid, 0, 1, 48, 80)
    assert (view[:, :16] == 255).all() and (view[:, -16:] == 255).all()  # 48 wide, centred


@pytest.mark.parametrize(
    ("images", "num_views", "message"),
    [
        (torch.zeros(2, 3, 8, 8), 4, "uint8"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), 4, "uint8"),
        (torch.zeros(0, 3, 8, 8, dtype=torch.uint8), 4, "at least one image"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 0, "num_views"),
    ],
)
def test_bad_input(images, num_views, message):
    with pytest.raises(SelfsupError, match=message):
        augmented_grid(images, build_augment("light", 8, 3), num_views=num_views)
