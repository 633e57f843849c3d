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

ImageSize = int | tuple[int, int]  # an output size: square side, or (height, width)


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
    """Callable(x, view=0, generator=None): uint8 (B, C, H, W) -> float32 views in [0, 1].

    image_size is the output size, an int for square images or (height, width). Cropping views
    are squares of side min(height, width) (a view's own `size` may change it: multi-crop's
    local views); resize-only views (crop_scale None) are height x width, like evaluation.
    Every sample draws its own parameters from `generator`, or the global RNG of x's device.
    """

    def __init__(
        self,
        recipe: Recipe,
        image_size: ImageSize,
        num_channels: int,
        colour_channels: tuple[int, ...] | None = None,
    ) -> None:
        self.recipe = recipe
        self.image_size = image_size
        self.num_channels = num_channels
        # The channels colour ops (jitter, grayscale, solarize) act on: all of a grey or RGB
        # image (None), the RGB triple of an RGB-D image, or none (); crops, flips and blur
        # act on every channel jointly.
        self.colour_channels = colour_channels
        self.height, self.width = _height_width(image_size)
        self.crop_size = min(self.height, self.width)
        # Why this recipe (the method's family for these images, or the user's choice): set by
        # the modality that chose it, shown at start-up and in the report.
        self.reason: str | None = None

    def __repr__(self) -> str:
        return (
            f"Augment({self.recipe.name!r}, image_size={self.image_size}, "
            f"num_channels={self.num_channels})"
        )

    def view_size(self, view: int = 0) -> tuple[int, int]:
        """(height, width) of the images that view `view` makes."""
        spec = self.recipe.view(view)
        if spec.crop_scale is None and not isinstance(spec.size, int):
            return spec.side(self.height), spec.side(self.width)
        side = spec.side(self.crop_size)
        return side, side

    def __call__(
        self, x: Tensor, view: int = 0, generator: torch.Generator | None = None
    ) -> Tensor:
        _check_images(x, self.num_channels)
        spec = self.recipe.view(view)
        with torch.no_grad():
            return self._apply(ops.to_float(x), spec, self.view_size(view), generator).contiguous()

    def _apply(
        self,
        x: Tensor,
        spec: ViewRecipe,
        size: tuple[int, int],
        generator: torch.Generator | None,
    ) -> Tensor:
        n, device = x.shape[0], x.device
        if spec.crop_scale is None:
            return ops.resize(x, size)
        side = size[0]
        if spec.pad > 0:
            x, boxes = _padded_boxes(x, spec.pad, generator)
        else:
            boxes = sample_crop_boxes(
                n, x.shape[2], x.shape[3], spec.crop_scale, spec.crop_ratio, device, generator
            )
        flip = sample_flags(n, spec.flip_p, device, generator)
        x = ops.resized_crop(x, boxes, side, flip)
        colour = self.colour_channels
        if colour is None or colour:
            c = x if colour is None else x[:, list(colour)]
            c = self._colour(c, spec, generator)
            if colour is not None:
                x = x.clone()
                x[:, list(colour)] = c
            else:
                x = c
        kernel = blur_kernel_size(side)
        if spec.blur_p > 0 and kernel > 1:
            picked = sample_flags(n, spec.blur_p, device, generator)
            sigma = uniform((n,), *spec.blur_sigma, device, generator)
            blur = partial(ops.gaussian_blur, kernel_size=kernel)
            x = ops.apply_picked(picked, x, blur, sigma)
        if spec.solarize_p > 0:
            picked = sample_flags(n, spec.solarize_p, device, generator)
            if colour is None:
                x = ops.solarize(x, picked)
            elif colour:
                x[:, list(colour)] = ops.solarize(x[:, list(colour)].contiguous(), picked)
        return x

    def _colour(self, x: Tensor, spec: ViewRecipe, generator: torch.Generator | None) -> Tensor:
        """Colour jitter and random grayscale of grey or RGB images x."""
        n, device = x.shape[0], x.device
        if spec.jitter is not None:
            j = spec.jitter
            ranges = jitter_ranges(j.brightness, j.contrast, j.saturation, j.hue)
            factors, order = sample_jitter(n, ranges, j.p, device, generator)
            x = ops.color_jitter(x, factors, order)
        if spec.grayscale_p > 0:
            x = ops.random_grayscale(x, sample_flags(n, spec.grayscale_p, device, generator))
        return x


def _padded_boxes(
    x: Tensor, pad: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """x zero-padded by `pad` of its shorter side on every side, and per sample a box of x's
    own size at a random place in it (torchvision's RandomCrop(size, padding))."""
    n, _, height, width = x.shape
    p = max(1, round(pad * min(height, width)))
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    offsets = uniform((n, 2), 0.0, 1.0, x.device, generator).mul_(2 * p + 1).floor_()
    sizes = torch.tensor([height, width], dtype=offsets.dtype, device=x.device).expand(n, 2)
    return padded, torch.cat([offsets, sizes], dim=1)


def _height_width(image_size: ImageSize) -> tuple[int, int]:
    """(height, width) of an int (square) or (height, width) image size; SelfsupError if bad."""
    if isinstance(image_size, tuple) and len(image_size) == 2:
        sides = image_size
    elif isinstance(image_size, list) and len(image_size) == 2:
        sides = tuple(image_size)
    else:
        sides = (image_size, image_size)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sides):
        raise SelfsupError(
            f"image size must be a positive number of pixels or (height, width); got {image_size!r}"
        )
    return sides[0], sides[1]


def build_augment(
    recipe: str,
    image_size: ImageSize,
    num_channels: int,
    colour_channels: tuple[int, ...] | None = None,
) -> Augment:
    """The named recipe as an Augment for images of image_size, an int or (height, width).

    Grey and RGB images get the whole recipe. Other channel counts (RGB-D) need
    `colour_channels` (see `colour_channels()`): the RGB triple the colour ops act on, or ()
    to leave colour out; crops, flips and blur act on all channels jointly."""
    if colour_channels is None and num_channels not in (1, 3):
        raise SelfsupError(
            f"augmentation supports 1 or 3 channels, got {num_channels}; for other channel "
            f"counts name the RGB channels (colour_channels) or none"
        )
    if colour_channels is not None and (
        len(colour_channels) not in (0, 1, 3)
        or not all(0 <= c < num_channels for c in colour_channels)
    ):
        raise SelfsupError(
            f"colour_channels must be () or 1 or 3 of the {num_channels} channels, got "
            f"{colour_channels}"
        )
    if colour_channels is not None and tuple(colour_channels) == tuple(range(num_channels)):
        colour_channels = None  # all of them: the plain path
    _height_width(image_size)
    return Augment(get_recipe(recipe), image_size, num_channels, colour_channels)


def colour_channels(num_channels: int, groups: tuple[tuple[str, int], ...] = ()) -> tuple[int, ...]:
    """The channels colour augmentation acts on: every channel of a grey or RGB image; the
    3 channels of a group named `rgb` of named channel groups (RGB-D); otherwise none."""
    if not groups:
        return tuple(range(num_channels)) if num_channels in (1, 3) else ()
    start = 0
    for name, size in groups:
        if name.lower() == "rgb" and size == 3:
            return (start, start + 1, start + 2)
        start += size
    return ()


def clean_transform(image_size: ImageSize) -> Callable[[Tensor], Tensor]:
    """Deterministic uint8 -> float [0, 1] transform for evaluation: a resize to image_size,
    an int (square) or (height, width), when the images are not that size already."""
    size = _height_width(image_size)

    def transform(x: Tensor) -> Tensor:
        _check_images(x, None)
        with torch.no_grad():
            return ops.resize(ops.to_float(x), size).contiguous()

    return transform
