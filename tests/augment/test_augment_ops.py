"""Each batched op equals torchvision.transforms.v2.functional applied sample by sample."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from selfsup.augment import ops

FACTORS = [0.0, 0.3, 0.7, 1.0, 1.4, 2.0]


def images(n: int = 6, channels: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Random float images in [0, 1] from uint8 values, with grey pixels and channel ties."""
    g = torch.Generator().manual_seed(seed)
    x = ops.to_float(
        torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    )
    if channels == 3:
        x[:, :, :2] = x[:, :1, :2]  # grey rows: max == min
        x[:, 1, 2:4] = x[:, 0, 2:4]  # red == green ties
        x[:, 2, 4:6] = x[:, 1, 4:6]  # green == blue ties
    return x


def per_sample(fn, x: torch.Tensor, params: list) -> torch.Tensor:
    return torch.stack([fn(x[i], p) for i, p in enumerate(params)])


@pytest.fixture(params=["indexed", "masked"])
def masks(request, monkeypatch) -> bool:
    """Run a test with the CPU's gather-the-subset form of the ops, then with the masked form
    that CUDA uses (no host-device synchronisation)."""
    masked = request.param == "masked"
    monkeypatch.setattr(ops, "_use_masks", lambda x: masked)
    return masked


def test_to_float_matches_torchvision():
    x = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    torch.testing.assert_close(ops.to_float(x), TF.to_dtype(x, torch.float32, scale=True))


@pytest.mark.parametrize("channels", [1, 3])
def test_brightness_contrast_saturation(channels, masks):
    x = images(channels=channels)
    order = torch.arange(4).repeat(len(FACTORS), 1)
    named = {ops.BRIGHTNESS: "brightness", ops.CONTRAST: "contrast", ops.SATURATION: "saturation"}
    for op, name in named.items():
        factors = torch.tensor([[1.0, 1.0, 1.0, 0.0]]).repeat(len(FACTORS), 1)
        factors[:, op] = torch.tensor(FACTORS)
        ours = ops.color_jitter(x, factors, order)
        ref = per_sample(getattr(TF, f"adjust_{name}"), x, FACTORS)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("channels", [1, 3])
def test_hue(channels):
    hues = [-0.5, -0.31, -0.05, 0.0, 0.17, 0.5]
    x = images(channels=channels)
    ours = ops.adjust_hue(x, torch.tensor(hues))
    torch.testing.assert_close(ours, per_sample(TF.adjust_hue, x, hues), atol=1e-5, rtol=0)


def test_color_jitter_applies_each_samples_order(masks):
    x = images()
    g = torch.Generator().manual_seed(3)
    factors = torch.rand(6, 4, generator=g) + 0.5
    factors[:, ops.HUE] = torch.tensor([-0.4, -0.1, 0.0, 0.05, 0.2, 0.5])
    factors[1] = torch.tensor([1.0, 1.0, 1.0, 0.0])  # identity: unchanged sample
    order = torch.stack([torch.randperm(4, generator=g) for _ in range(6)])
    ours = ops.color_jitter(x, factors, order)
    fns = {
        ops.BRIGHTNESS: TF.adjust_brightness,
        ops.CONTRAST: TF.adjust_contrast,
        ops.SATURATION: TF.adjust_saturation,
        ops.HUE: TF.adjust_hue,
    }
    for i in range(6):
        ref = x[i]
        for op in order[i].tolist():
            ref = fns[op](ref, factors[i, op].item())
        torch.testing.assert_close(ours[i], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[1], x[1], atol=1e-6, rtol=0)


def test_color_jitter_masked_equals_indexed(monkeypatch):
    """Both forms run the same arithmetic per sample: equal to the bit, input left unchanged."""
    g = torch.Generator().manual_seed(4)
    x = images(n=64, seed=4)
    factors = torch.rand(64, 4, generator=g) + 0.5
    factors[:, ops.HUE] = torch.rand(64, generator=g) - 0.5
    factors[::5] = torch.tensor([1.0, 1.0, 1.0, 0.0])
    order = torch.stack([torch.randperm(4, generator=g) for _ in range(64)])
    before = x.clone()
    results = []
    for masked in (False, True):
        monkeypatch.setattr(ops, "_use_masks", lambda x, masked=masked: masked)
        results.append(ops.color_jitter(x, factors, order))
    assert torch.equal(results[0], results[1]) and torch.equal(x, before)


def test_color_jitter_one_channel_skips_saturation_and_hue(masks):
    x = images(channels=1)
    factors = torch.tensor([[1.0, 1.0, 0.2, 0.4]]).repeat(6, 1)
    order = torch.arange(4).repeat(6, 1)
    torch.testing.assert_close(ops.color_jitter(x, factors, order), x)


def test_random_grayscale(masks):
    x = images()
    apply = torch.tensor([True, False, True, False, False, True])
    ref = torch.where(apply.view(-1, 1, 1, 1), TF.rgb_to_grayscale(x, num_output_channels=3), x)
    torch.testing.assert_close(ops.random_grayscale(x, apply), ref, atol=1e-6, rtol=0)
    grey = images(channels=1)
    assert ops.random_grayscale(grey, apply) is grey


@pytest.mark.parametrize("kernel_size", [3, 5, 9])
@pytest.mark.parametrize("channels", [1, 3])
def test_gaussian_blur(kernel_size, channels):
    sigmas = [0.1, 0.5, 1.0, 1.5, 2.0, 3.0]
    x = images(channels=channels)
    ours = ops.gaussian_blur(x, torch.tensor(sigmas), kernel_size)
    ref = per_sample(lambda img, s: TF.gaussian_blur(img, [kernel_size] * 2, [s, s]), x, sigmas)
    torch.testing.assert_close(ours, ref.clamp(0, 1), atol=1e-5, rtol=0)


def test_solarize(masks):
    x = images()
    apply = torch.tensor([True, False, True, True, False, True])
    ref = torch.where(apply.view(-1, 1, 1, 1), TF.solarize(x, 0.5), x)
    torch.testing.assert_close(ops.solarize(x, apply), ref)
    assert torch.equal(ops.solarize(x, torch.zeros(6, dtype=torch.bool)), x)


def test_apply_picked(masks):
    x = images()
    picked = torch.tensor([False, True, True, False, False, True])
    sigma = torch.tensor([0.5, 1.0, 1.5, 2.0, 0.7, 0.3])
    out = ops.apply_picked(picked, x, lambda y, s: ops.gaussian_blur(y, s, 5), sigma)
    ref = torch.where(picked.view(-1, 1, 1, 1), ops.gaussian_blur(x, sigma, 5), x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    nothing = torch.zeros(6, dtype=torch.bool)
    assert torch.equal(ops.apply_picked(nothing, x, lambda y: y * 0), x)


@pytest.mark.parametrize("size", [8, 16, 50])
def test_resized_crop(size):
    """Equal to crop-then-resize (bilinear, antialias=False) up to float rounding: sample points
    are clamped to the box, so edge pixels replicate the box edge exactly like torchvision's;
    1e-5 covers the ~1e-6 pixel error of computing grid coordinates in float32."""
    x = images(size=16)
    boxes = [
        (0, 0, 16, 16),
        (3, 4, 5, 10),
        (10, 0, 6, 8),
        (0, 11, 16, 5),
        (15, 15, 1, 1),
        (2, 1, 13, 14),
    ]
    flip = torch.tensor([False, True, False, True, False, True])
    ours = ops.resized_crop(x, torch.tensor(boxes, dtype=torch.float32), size, flip)
    ref = per_sample(
        lambda img, b: TF.resized_crop(img, *b, [size, size], antialias=False), x, boxes
    )
    ref = torch.where(flip.view(-1, 1, 1, 1), TF.horizontal_flip(ref), ref)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [8, 16, 24])
def test_resize_matches_torchvision(size):
    x = images(size=16)
    torch.testing.assert_close(ops.resize(x, size), TF.resize(x, [size, size]), atol=1e-5, rtol=0)
    wide = ops.resize(x, (size, 2 * size))
    torch.testing.assert_close(wide, TF.resize(x, [size, 2 * size]), atol=1e-5, rtol=0)
