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


# --- families: the augmentation a method was published with, at the images' size ----------


@pytest.mark.parametrize(
    ("family", "channels", "side", "recipe"),
    [
        ("simclr", 3, 32, "simclr-cifar"),
        ("simclr", 1, 8, "digits"),
        ("simclr", 3, 224, "simclr"),
        ("byol", 3, 32, "byol-cifar"),
        ("byol", 3, 224, "byol"),
        ("byol", 1, 96, "byol-grey"),
        ("dino", 3, 32, "byol-cifar"),  # two views at CIFAR size, as solo-learn's CIFAR DINO
        ("dino", 3, 224, "multicrop"),
        ("swav", 3, 32, "simclr-cifar"),
        ("swav", 3, 224, "swav-multicrop"),
        ("instdisc", 3, 32, "instdisc-cifar"),
        ("mae", 3, 32, "mae"),
        ("mae", 1, 8, "digits-crop"),
        ("aim", 3, 32, "aim"),
        ("rotnet", 3, 32, "pad-crop-flip"),
        ("none", 3, 32, "none"),
    ],
)
def test_family_recipe_by_kind_of_images(family, channels, side, recipe):
    from selfsup.augment.recipes import choose_recipe

    got, why = choose_recipe(family, channels, side, side)
    assert got == recipe
    assert family in why and f"{side}x{side} px" in why
    get_recipe(recipe)


def test_crop_and_flip_families_have_no_colour_ops():
    """MAE trains with crop and flip only (its paper: colour jitter hurts); AIM, CMC and the
    small-grey variant of these families likewise."""
    for name in ("mae", "aim", "crop-flip", "pad-crop-flip", "digits-crop", "light"):
        for view in get_recipe(name).views:
            assert view.jitter is None and view.grayscale_p == 0 and view.blur_p == 0, name
            assert view.solarize_p == 0, name
    assert get_recipe("mae").view(0).crop_scale == (0.2, 1.0)


def test_byol_cifar_is_asymmetric_and_instdisc_cifar_is_lemniscates():
    v0, v1 = get_recipe("byol-cifar").views
    assert (v0.solarize_p, v1.solarize_p) == (0.0, 0.2) and v0.blur_p == v1.blur_p == 0.0
    assert v0.jitter == Jitter(0.4, 0.4, 0.2, 0.1, p=0.8)
    inst = get_recipe("instdisc-cifar").view(0)
    assert inst.jitter == Jitter(0.4, 0.4, 0.4, 0.4, p=1.0) and inst.flip_p == 0
    assert inst.crop_scale == (0.2, 1.0) and inst.grayscale_p == 0.2


def test_swav_multicrop_pattern():
    views = get_recipe("swav-multicrop").views
    assert [v.crop_scale for v in views] == [(0.14, 1.0)] * 2 + [(0.05, 0.14)] * 6
    assert [v.size for v in views] == [None, None] + [96 / 224] * 6
    assert all(v.blur_p == 0.5 and v.jitter.brightness == 0.8 for v in views)


def test_pad_crop_is_a_zero_filled_shift_of_at_most_the_pad():
    """RotNet's RandomCrop(32, padding=4): every view is the image moved by up to 4 px in each
    direction (zeros where it came from outside), maybe mirrored; nothing is resized."""
    import torch

    from selfsup.augment import build_augment

    augment = build_augment("pad-crop-flip", 32, 3)
    x = torch.randint(1, 256, (16, 3, 32, 32), dtype=torch.uint8)
    views = augment(x, generator=torch.Generator().manual_seed(0))
    xf = x.float() / 255
    padded = torch.nn.functional.pad(xf, (4, 4, 4, 4))
    shifts = set()
    for i in range(len(x)):
        found = [
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if torch.allclose(
                views[i],
                padded[i, :, dy : dy + 32, dx : dx + 32].flip(-1)
                if flip
                else padded[i, :, dy : dy + 32, dx : dx + 32],
                atol=1e-5,
            )
        ]
        assert found, i
        shifts.add(found[0][:2])
    assert len(shifts) > 4  # the place is drawn per sample


def test_the_reports_augmentation_section_says_which_recipe_and_why():
    from types import SimpleNamespace

    import numpy as np
    import torch

    import selfsup
    from selfsup.modalities import get_modality
    from selfsup.modalities.image_report import augmentation_section
    from selfsup.models import ImageEncoderSpec
    from selfsup.report_parts import section_html

    spec = ImageEncoderSpec("convnet", 3, 32, True, (0.5,) * 3, (0.25,) * 3)
    augment = get_modality("image").augment(selfsup.make_config(**{"method.name": "mae"}), spec)

    class Queries(SimpleNamespace):
        def __len__(self):
            return len(self.images)

    queries = Queries(images=torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8))
    views = augmentation_section(queries, augment, SimpleNamespace(preprocess=lambda x: x))
    assert views.grid.dtype == np.uint8 and views.grid.shape[2] == 3  # data, not HTML
    html = section_html(views)
    assert "training recipe mae (" in html
    assert "chosen as mae&#x27;s published augmentation: the mae family" in html or (
        "chosen as mae's published augmentation: the mae family" in html
    )
