"""The generated shapes: every factor combination once, images that follow their factors, a
seeded held-out split that keeps them, and the `shapes` source."""

import pytest
import torch

from selfsup.data.registry import load_data
from selfsup.data.shapes import FACTORS, GRIDS, ShapesGrid, all_factors, draw, render
from selfsup.errors import SelfsupError

SMALL = ShapesGrid(size=32, scales=2, rotations=2, positions=4)


def columns(image: torch.Tensor) -> torch.Tensor:
    """Column indices of the lit pixels."""
    return image.nonzero()[:, -1]


def test_the_grid_holds_every_combination_once():
    f = all_factors(SMALL)
    assert f.shape == (len(SMALL), 5) and len(SMALL) == 3 * 2 * 2 * 4 * 4
    assert len({tuple(r) for r in f.tolist()}) == len(f)
    assert len(GRIDS["64"]) == 737_280  # dSprites' grid


def test_moving_x_or_y_by_one_level_moves_the_shape_one_pixel():
    grid = GRIDS["32"]
    base = torch.tensor([[2, 3, 4, 5, 6]])
    right = base.clone()
    right[0, 3] += 1
    down = base.clone()
    down[0, 4] += 1
    a, b, c = render(grid, torch.cat([base, right, down]))
    assert a.any()
    assert torch.equal(torch.roll(a, 1, dims=-1), b)  # x + 1: one pixel to the right
    assert torch.equal(torch.roll(a, 1, dims=-2), c)  # y + 1: one pixel down
    assert columns(b).float().mean() == columns(a).float().mean() + 1


def test_each_factor_changes_the_image_and_scale_grows_the_shape():
    grid = GRIDS["32"]
    base = torch.tensor([1, 2, 1, 7, 7])
    images = {}
    for k, name in enumerate(FACTORS):
        other = base.clone()
        other[k] += 1
        images[name] = render(grid, torch.stack([base, other]))
        assert not torch.equal(images[name][0], images[name][1]), name
    small, large = images["scale"]
    assert (large > 0).sum() > (small > 0).sum()


def test_render_matches_drawing_each_image_directly():
    grid = GRIDS["32"]
    f = all_factors(grid)[torch.randperm(len(grid), generator=torch.Generator().manual_seed(0))]
    assert torch.equal(render(grid, f[:300])[:, 0], draw(grid, f[:300]).to(torch.uint8) * 255)
    # every shape stays inside the image at the grid's edge positions
    edges = f[(f[:, 3] == 0) | (f[:, 3] == grid.positions - 1)][:300]
    drawn = draw(grid, edges)
    assert not drawn[:, :, 0].any() and not drawn[:, :, -1].any()


def test_the_source_holds_out_a_seeded_fifth_with_factors_and_shape_labels():
    splits = load_data("shapes")
    train, test = splits.train, splits.test
    assert len(train) + len(test) == len(GRIDS["32"]) and len(test) == len(GRIDS["32"]) // 5
    assert {"label", "factors"} <= test.serves and train.factors.names == FACTORS
    assert torch.equal(test.labels, test.factors.values[:, 0])
    rows = test.factors.values[:50]
    assert torch.equal(render(GRIDS["32"], rows), test.images[:50])
    again = load_data("shapes").test
    assert torch.equal(again.factors.values, test.factors.values)
    seen = {tuple(r) for r in train.factors.values.tolist()}
    assert not any(tuple(r) in seen for r in test.factors.values.tolist())


def test_an_unknown_grid_is_refused():
    with pytest.raises(SelfsupError, match=r"32.*64"):
        load_data("shapes:48")
