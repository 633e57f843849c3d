"""Augment end to end: shapes, per-sample randomness, seeding, rates, devices and errors."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from selfsup.augment import available_recipes, build_augment, clean_transform, get_recipe
from selfsup.augment.pipeline import blur_kernel_size
from selfsup.augment.recipes import ViewRecipe
from selfsup.errors import SelfsupError


def uint8_images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


def test_available_recipes():
    assert available_recipes() == [
        "simclr",
        "simclr-cifar",
        "byol",
        "simclr-grey",
        "multicrop",
        "byol-cifar",
        "byol-grey",
        "swav-multicrop",
        "instdisc-cifar",
        "instdisc",
        "mae",
        "aim",
        "crop-flip",
        "pad-crop-flip",
        "digits-crop",
        "light",
        "digits",
        "none",
    ]


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(SelfsupError, match=r"unknown augmentation recipe 'simclar'.*simclr-cifar"):
        build_augment("simclar", 32, 3)


def test_bad_inputs():
    with pytest.raises(SelfsupError, match="1 or 3 channels"):
        build_augment("simclr", 32, 4)
    augment = build_augment("simclr", 32, 3)
    with pytest.raises(SelfsupError, match=r"\(B, 3, H, W\)"):
        augment(uint8_images(2, 1, 32))
    with pytest.raises(SelfsupError, match=r"views 0\.\.1"):
        build_augment("byol", 32, 3)(uint8_images(2, 3, 32), view=2)


@pytest.mark.parametrize("recipe", available_recipes())
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("in_size", "out_size"), [(8, 8), (32, 32), (32, 8), (8, 32)])
def test_shapes_dtype_range(recipe, channels, in_size, out_size):
    augment = build_augment(recipe, out_size, channels)
    for view in range(max(2, len(augment.recipe.views))):
        out = augment(uint8_images(5, channels, in_size), view=view)
        assert out.shape == (5, channels, *augment.view_size(view))
        assert out.dtype == torch.float32 and out.is_contiguous()
        assert out.min() >= 0 and out.max() <= 1
        if view < 2:  # the one view of symmetric recipes, the two of byol, multicrop's global
            assert out.shape[2:] == (out_size, out_size)


def test_identical_images_get_different_views():
    """Crops are whole pixels, so light's ~10^4 boxes could repeat (~2 % for 32 draws); seeded."""
    torch.manual_seed(0)
    x = uint8_images(1, 3, 32).expand(32, 3, 32, 32)
    for recipe in ("simclr", "simclr-cifar", "byol", "simclr-grey", "multicrop", "light", "digits"):
        channels = 1 if recipe in ("digits", "simclr-grey") else 3
        out = build_augment(recipe, 32, channels)(x[:, :channels]).flatten(1)
        distance = torch.cdist(out, out)
        distance.fill_diagonal_(1.0)
        assert (distance > 1e-4).all(), recipe


def test_global_seed_reproduces():
    augment = build_augment("simclr", 32, 3)
    x = uint8_images(16, 3, 32)
    torch.manual_seed(7)
    first = [augment(x, 0), augment(x, 1)]
    torch.manual_seed(7)
    second = [augment(x, 0), augment(x, 1)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])


def test_generator_reproduces_and_leaves_global_rng_alone():
    augment = build_augment("byol", 32, 3)
    x = uint8_images(16, 3, 32)
    state = torch.get_rng_state()
    a = augment(x, 1, generator=torch.Generator().manual_seed(3))
    b = augment(x, 1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_grayscale_and_solarize_rates():
    """simclr-cifar turns ~20 % of views grey; byol view 1 solarizes ~20 %, view 0 never."""
    n = 4000
    x = uint8_images(n, 3, 8)
    torch.manual_seed(0)
    out = build_augment("simclr-cifar", 8, 3)(x)
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert abs(grey.float().mean().item() - 0.2) < 0.03  # std error 0.006

    # A white image stays uniform and >= 0.6 through BYOL's crop, jitter (brightness >= 0.6),
    # grayscale and blur, so a view has pixels below 0.5 exactly when it was solarized.
    white = torch.full((n, 3, 8, 8), 255, dtype=torch.uint8)
    byol = build_augment("byol", 8, 3)
    dark = [(byol(white, view=v) < 0.5).flatten(1).any(1).float().mean().item() for v in (0, 1)]
    assert dark[0] == 0.0
    assert abs(dark[1] - 0.2) < 0.03


def test_blur_kernel_size():
    assert [blur_kernel_size(s) for s in (8, 28, 32, 96, 224)] == [1, 3, 3, 9, 23]


def test_none_recipe_and_clean_transform_are_deterministic_resizes():
    x = uint8_images(4, 3, 32)
    torch.testing.assert_close(clean_transform(32)(x), x.float() / 255)
    torch.testing.assert_close(build_augment("none", 16, 3)(x), clean_transform(16)(x))
    assert clean_transform(16)(x).shape == (4, 3, 16, 16)


def test_multicrop_views_have_their_own_sizes():
    """2 global views at the output size, then local views at 96/224 of it."""
    recipe = get_recipe("multicrop")
    assert len(recipe.views) == 8
    augment = build_augment("multicrop", 224, 3)
    x = uint8_images(2, 3, 64)
    sizes = [augment(x, view=v).shape[2:] for v in range(8)]
    assert sizes == [(224, 224)] * 2 + [(96, 96)] * 6
    assert build_augment("multicrop", 32, 3)(x, view=7).shape == (2, 3, 14, 14)  # 13.7 rounded
    with pytest.raises(SelfsupError, match=r"views 0\.\.7"):
        augment(x, view=8)


def test_one_view_recipes_serve_every_index():
    augment = build_augment("simclr", 16, 3)
    assert augment(uint8_images(2, 3, 16), view=5).shape == (2, 3, 16, 16)


def test_view_size_in_pixels_and_fraction():
    assert ViewRecipe((0.5, 1.0), size=20).side(32) == 20
    assert ViewRecipe((0.5, 1.0), size=0.5).side(32) == 16
    assert ViewRecipe((0.5, 1.0), size=1.0).side(32) == 32
    assert ViewRecipe((0.5, 1.0)).side(32) == 32
    assert ViewRecipe((0.5, 1.0), size=0.01).side(32) == 1


@pytest.mark.parametrize("size", [0, -3, 0.0, 1.5, True, "96"])
def test_bad_view_size(size):
    with pytest.raises(SelfsupError, match="size"):
        ViewRecipe((0.5, 1.0), size=size)


def test_non_square_image_size():
    """(H, W): evaluation and resize-only views are H x W; training crops stay square."""
    x = uint8_images(3, 3, 32)
    assert build_augment("simclr", (24, 40), 3)(x).shape == (3, 3, 24, 24)
    assert build_augment("multicrop", (224, 320), 3).view_size(2) == (96, 96)
    assert build_augment("none", (24, 40), 3)(x).shape == (3, 3, 24, 40)
    out = clean_transform((24, 40))(x)
    assert out.shape == (3, 3, 24, 40)
    torch.testing.assert_close(out, TF.resize(x.float() / 255, [24, 40]), atol=1e-5, rtol=0)
    torch.testing.assert_close(clean_transform([24, 40])(x), out)
    torch.testing.assert_close(clean_transform((32, 32))(x), clean_transform(32)(x))


@pytest.mark.parametrize("size", [0, (0, 5), (3,), (3, 4, 5), "32", True, 2.5])
def test_bad_image_size(size):
    with pytest.raises(SelfsupError, match="image size"):
        build_augment("simclr", size, 3)
    with pytest.raises(SelfsupError, match="image size"):
        clean_transform(size)


@pytest.mark.parametrize("recipe", available_recipes())
@pytest.mark.parametrize("channels", [1, 3])
def test_views_need_no_host_device_sync(recipe, channels):
    """On the 'meta' device every data-dependent read (.nonzero(), .item(), bool of a tensor)
    raises: a view made there is made without waiting for a CUDA device."""
    augment = build_augment(recipe, 32, channels)
    x = torch.empty(4, channels, 40, 48, dtype=torch.uint8, device="meta")
    for view in range(max(2, len(augment.recipe.views))):
        out = augment(x, view=view)
        assert out.device.type == "meta" and out.shape == (4, channels, *augment.view_size(view))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_views_on_cuda_do_not_synchronise():
    x = uint8_images(32, 3, 40).cuda()
    augments = [build_augment(r, 32, 3) for r in available_recipes()]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for augment in augments:
            for view in range(max(2, len(augment.recipe.views))):
                augment(x, view=view)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x = uint8_images(32, 3, 32).cuda()
    for recipe in available_recipes():
        out = build_augment(recipe, 32, 3)(x, view=1)
        assert out.device == x.device and out.shape == (32, 3, 32, 32)
    torch.cuda.manual_seed(1)
    a = build_augment("simclr", 32, 3)(x)
    torch.cuda.manual_seed(1)
    assert torch.equal(a, build_augment("simclr", 32, 3)(x))
    b = build_augment("simclr", 32, 3)(x, generator=torch.Generator().manual_seed(0))
    assert b.device == x.device
