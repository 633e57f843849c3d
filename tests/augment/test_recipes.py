"""Recipes hold the published settings, and the default recipe follows from the images."""

import pytest

from selfsup.augment import default_recipe, get_recipe
from selfsup.augment.recipes import Jitter
from selfsup.errors import SelfsupError


def test_simclr_colour_strengths():
    """SimCLR's strength s is ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s) with p = 0.8: ImageNet's
    s = 1.0 for `simclr`, CIFAR's s = 0.5 for `simclr-cifar`."""
    assert get_recipe("simclr").view(0).jitter == Jitter(0.8, 0.8, 0.8, 0.2, p=0.8)
    assert get_recipe("simclr-cifar").view(0).jitter == Jitter(0.4, 0.4, 0.4, 0.1, p=0.8)
    assert get_recipe("simclr").view(0).blur_p == 0.5
    assert get_recipe("simclr-cifar").view(0).blur_p == 0.0


def test_grey_recipe_has_no_colour_ops():
    view = get_recipe("simclr-grey").view(0)
    assert view.jitter.saturation == 0 and view.jitter.hue == 0 and view.grayscale_p == 0
    assert view.jitter.brightness > 0 and view.jitter.contrast > 0
    assert view.flip_p == 0.5 and view.blur_p > 0


def test_multicrop_pattern():
    views = get_recipe("multicrop").views
    assert [v.crop_scale for v in views] == [(0.4, 1.0)] * 2 + [(0.05, 0.4)] * 6
    assert [v.size for v in views] == [None, None] + [96 / 224] * 6
    assert [v.blur_p for v in views[:3]] == [1.0, 0.1, 0.5]
    assert [v.solarize_p for v in views[:3]] == [0.0, 0.2, 0.0]


@pytest.mark.parametrize(
    ("channels", "height", "width", "recipe"),
    [
        (1, 28, 28, "digits"),  # MNIST
        (1, 32, 32, "digits"),
        (1, 16, 32, "digits"),
        (1, 33, 33, "simclr-grey"),
        (1, 28, 64, "simclr-grey"),  # the longest side decides
        (1, 224, 224, "simclr-grey"),  # X-rays
        (3, 32, 32, "simclr-cifar"),  # CIFAR
        (3, 64, 64, "simclr-cifar"),  # Tiny ImageNet
        (3, 8, 8, "simclr-cifar"),
        (3, 65, 65, "simclr"),
        (3, 96, 96, "simclr"),  # STL-10
        (3, 48, 200, "simclr"),
        (3, 224, 224, "simclr"),
    ],
)
def test_default_recipe(channels, height, width, recipe):
    assert default_recipe(channels, height, width) == recipe
    get_recipe(recipe)  # exists


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((4, 32, 32), "1 or 3 channels"),
        ((3, 0, 32), "height and width"),
        ((1, 32, -1), "height and width"),
    ],
)
def test_default_recipe_bad_input(args, message):
    with pytest.raises(SelfsupError, match=message):
        default_recipe(*args)
