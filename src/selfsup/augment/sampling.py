"""Per-sample random parameters for the ops in `ops.py`, drawn in one batched call each.

Randomness comes from `generator` when one is given (on any device; values are moved to
`device`), else from the global torch RNG of `device`, so torch.manual_seed makes a run
reproducible. Distributions follow torchvision.transforms.v2's random transforms.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfsup.augment.ops import HUE

Range = tuple[float, float]


def uniform(
    shape: tuple[int, ...],
    low: float,
    high: float,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Uniform floats in [low, high) of the given shape, on device."""
    if generator is None:
        values = torch.rand(shape, device=device)
    else:
        values = torch.rand(shape, device=generator.device, generator=generator)
        values = _to_device(values, device)
    return values.mul_(high - low).add_(low)


def _to_device(values: Tensor, device: torch.device | str) -> Tensor:
    """values on device; a CPU -> accelerator copy does not wait (a blocking one would
    synchronise the device), while a copy to the CPU must wait for its data."""
    return values.to(device, non_blocking=values.device.type == "cpu")


def sample_flags(
    n: int, p: float, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """n booleans, each True with probability p (whether to apply a random op to a sample)."""
    return uniform((n,), 0.0, 1.0, device, generator) < p


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: Range,
    ratio: Range,
    device: torch.device | str,
    generator: torch.Generator | None = None,
    tries: int = 10,
) -> Tensor:
    """Boxes (n, 4) as pixels (top, left, height, width), drawn like RandomResizedCrop.

    Area fraction uniform in scale, log aspect ratio uniform in log(ratio); the `tries` draws
    per sample run in parallel and the first that fits is kept, else the central crop that
    torchvision falls back to.
    """
    area = uniform((n, tries), scale[0], scale[1], device, generator).mul_(height * width)
    log_ratio = uniform((n, tries), math.log(ratio[0]), math.log(ratio[1]), device, generator)
    aspect = log_ratio.exp_()
    w = (area * aspect).sqrt_().round_()
    h = (area / aspect).sqrt_().round_()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first fitting try (0 if none)
    h = h.gather(1, first).squeeze(1)
    w = w.gather(1, first).squeeze(1)

    fallback_h, fallback_w = _central_crop_size(height, width, ratio)
    any_fits = fits.any(dim=1)
    h = torch.where(any_fits, h, torch.full_like(h, fallback_h))
    w = torch.where(any_fits, w, torch.full_like(w, fallback_w))
    offsets = uniform((n, 2), 0.0, 1.0, device, generator)
    top = offsets[:, 0].mul_(height - h + 1).floor_()
    left = offsets[:, 1].mul_(width - w + 1).floor_()
    top = torch.where(any_fits, top, ((height - h) / 2).floor_())
    left = torch.where(any_fits, left, ((width - w) / 2).floor_())
    return torch.stack((top, left, h, w), dim=1)


def _central_crop_size(height: int, width: int, ratio: Range) -> tuple[int, int]:
    """RandomResizedCrop's fallback box: the whole image, trimmed to the ratio range."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return round(width / min(ratio)), width
    if in_ratio > max(ratio):
        return height, round(height * max(ratio))
    return height, width


def jitter_ranges(brightness: float, contrast: float, saturation: float, hue: float) -> list[Range]:
    """Factor ranges of ColorJitter strengths, as torchvision reads them: 1 +- s (>= 0), hue +-h."""
    return [
        (max(0.0, 1.0 - brightness), 1.0 + brightness),
        (max(0.0, 1.0 - contrast), 1.0 + contrast),
        (max(0.0, 1.0 - saturation), 1.0 + saturation),
        (-hue, hue),
    ]


def sample_jitter(
    n: int,
    ranges: list[Range],
    p: float,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Colour-jitter factors (n, 4) and per-sample op orders (n, 4) for `ops.color_jitter`.

    Factor columns follow ops.BRIGHTNESS, CONTRAST, SATURATION, HUE; samples not picked (with
    probability 1 - p) get the identity factors (1, 1, 1, 0).
    """
    low = _to_device(torch.tensor([r[0] for r in ranges]), device)
    high = _to_device(torch.tensor([r[1] for r in ranges]), device)
    factors = uniform((n, 4), 0.0, 1.0, device, generator).mul_(high - low).add_(low)
    identity = torch.ones(4, device=device)
    identity[HUE] = 0.0
    picked = sample_flags(n, p, device, generator)
    factors = torch.where(picked[:, None], factors, identity)
    order = uniform((n, 4), 0.0, 1.0, device, generator).argsort(dim=1)
    return factors, order
