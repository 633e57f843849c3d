"""Augment: a recipe applied to whole uint8 batches on their device, each sample its own draw."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from selfsup.augment import ops
from selfsup.augment.recipes import Recipe, ViewRecipe, get_recipe
from selfsup.augment.sampling import (
    jitter_ranges,
    sample_crop_boxes,
    sample_flags,
    sample_jitter,
    uniform,
)
from selfsup.errors import SelfsupError


def blur_kernel_size(image_size: int) -> int:
    """Gaussian kernel ~10% of the image side, made odd (SimCLR: 23 at 224 px, 3 at 32 px)."""
    return int(0.1 * image_size) // 2 * 2 + 1


def _check_images(x: Tensor, num_channels: int | None) -> None:
    """Fail with a clear message unless x is a (B, C, H, W) uint8 or float image batch."""
    if x.ndim != 4 or (num_channels is not None and x.shape[1] != num_channels):
        expected = f"(B, {num_channels}, H, W)" if num_channels else "(B, C, H, W)"
        raise SelfsupError(f"augmentation expects images shaped {expected}, got {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise SelfsupError(f"augmentation expects uint8 or float images, got {x.dtype}")


class Augment:
    """Callable(x, view=0, generator=None): uint8 (B, C, H, W) -> float32 (B, C, S, S) in [0, 1].

    Every sample draws its own parameters from `generator`, or the global RNG of x's device.
    """

    def __init__(self, recipe: Recipe, image_size: int, num_channels: int) -> None:
        self.recipe = recipe
        self.image_size = image_size
        self.num_channels = num_channels
        self.blur_kernel = blur_kernel_size(image_size)

    def __repr__(self) -> str:
        return (
            f"Augment({self.recipe.name!r}, image_size={self.image_size}, "
            f"num_channels={self.num_channels})"
        )

    def __call__(
        self, x: Tensor, view: int = 0, generator: torch.Generator | None = None
    ) -> Tensor:
        _check_images(x, self.num_channels)
        spec = self.recipe.view(view)
        with torch.no_grad():
            return self._apply(ops.to_float(x), spec, generator).contiguous()

    def _apply(self, x: Tensor, spec: ViewRecipe, generator: torch.Generator | None) -> Tensor:
        n, device, size = x.shape[0], x.device, self.image_size
        if spec.crop_scale is None:
            return ops.resize(x, size)
        boxes = sample_crop_boxes(
            n, x.shape[2], x.shape[3], spec.crop_scale, spec.crop_ratio, device, generator
        )
        flip = sample_flags(n, spec.flip_p, device, generator)
        x = ops.resized_crop(x, boxes, size, flip)
        if spec.jitter is not None:
            j = spec.jitter
            ranges = jitter_ranges(j.brightness, j.contrast, j.saturation, j.hue)
            factors, order = sample_jitter(n, ranges, j.p, device, generator)
            x = ops.color_jitter(x, factors, order)
        if spec.grayscale_p > 0:
            x = ops.random_grayscale(x, sample_flags(n, spec.grayscale_p, device, generator))
        if spec.blur_p > 0 and self.blur_kernel > 1:
            picked = sample_flags(n, spec.blur_p, device, generator)
            sigma = uniform((n,), *spec.blur_sigma, device, generator)
            blur = partial(ops.gaussian_blur, kernel_size=self.blur_kernel)
            x = ops.apply_picked(picked, x, blur, sigma)
        if spec.solarize_p > 0:
            x = ops.solarize(x, sample_flags(n, spec.solarize_p, device, generator))
        return x


def build_augment(recipe: str, image_size: int, num_channels: int) -> Augment:
    """The named recipe as an Augment producing image_size x image_size views."""
    if num_channels not in (1, 3):
        raise SelfsupError(f"augmentation supports 1 or 3 channels, got {num_channels}")
    if image_size < 1:
        raise SelfsupError(f"augmentation image_size must be positive, got {image_size}")
    return Augment(get_recipe(recipe), image_size, num_channels)


def clean_transform(image_size: int) -> Callable[[Tensor], Tensor]:
    """Deterministic uint8 -> float [0, 1] transform for evaluation, resizing only if needed."""

    def transform(x: Tensor) -> Tensor:
        _check_images(x, None)
        with torch.no_grad():
            return ops.resize(ops.to_float(x), image_size).contiguous()

    return transform
