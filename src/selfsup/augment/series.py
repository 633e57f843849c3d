"""Batched augmentations of series (B, C, T) float, with per-sample random parameters drawn on
the batch's device in one go (no Python loop over samples), and named recipes.

The operations follow the time-series augmentation survey of Um et al. (2017) and the recipes
of TS-TCC (Eldele et al., 2021): jitter (added Gaussian noise), scaling (a Gaussian factor per
sample and channel), magnitude warping (a smooth random curve multiplies the signal: Gaussian
knots, linearly interpolated), time warping (a smooth random monotone time map: positive random
speeds at knots, integrated), cropping (a random window resized back to T), time masking (a
random contiguous span set to zero) and permutation of segments (the series cut into equal
segments put back in a random order; its values are kept). Each operation of a recipe applies
to each sample with its own probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from selfsup.errors import SelfsupError


def _per_sample(x: Tensor, p: float) -> Tensor:
    """(B, 1, 1) bool: which samples an operation applied with probability p touches."""
    return torch.rand(x.shape[0], 1, 1, device=x.device) < p


def jitter(x: Tensor, sigma: float = 0.03) -> Tensor:
    """x + N(0, sigma^2) noise, sigma relative to each sample's standard deviation."""
    scale = x.std(dim=2, keepdim=True).clamp_min(1e-8)
    return x + torch.randn_like(x) * sigma * scale


def scaling(x: Tensor, sigma: float = 0.1) -> Tensor:
    """x times a factor N(1, sigma^2) drawn per sample and channel."""
    return x * (1 + sigma * torch.randn(x.shape[0], x.shape[1], 1, device=x.device))


def _smooth_curves(b: int, t: int, knots: int, sigma: float, device: Any) -> Tensor:
    """(b, t) curves through `knots` Gaussian N(1, sigma^2) values, linearly interpolated."""
    k = 1 + sigma * torch.randn(b, 1, knots + 2, device=device)
    return F.interpolate(k, size=t, mode="linear", align_corners=True)[:, 0]


def magnitude_warp(x: Tensor, sigma: float = 0.2, knots: int = 4) -> Tensor:
    """x times a smooth random curve per sample (shared by its channels)."""
    return x * _smooth_curves(x.shape[0], x.shape[2], knots, sigma, x.device)[:, None]


def _resample(x: Tensor, positions: Tensor) -> Tensor:
    """x (B, C, T) read at fractional step positions (B, T') by linear interpolation."""
    t = x.shape[2]
    grid_x = positions / max(t - 1, 1) * 2 - 1
    grid = torch.stack([grid_x, torch.zeros_like(grid_x)], dim=-1)[:, None]  # (B, 1, T', 2)
    out = F.grid_sample(x[:, :, None], grid, mode="bilinear", align_corners=True)
    return out[:, :, 0]


def time_warp(x: Tensor, sigma: float = 0.2, knots: int = 4) -> Tensor:
    """x read along a smooth random monotone time map from step 0 to step T-1."""
    b, _, t = x.shape
    speed = _smooth_curves(b, t, knots, sigma, x.device).clamp_min(0.1)
    pos = torch.cumsum(speed, dim=1) - speed[:, :1]
    pos = pos / pos[:, -1:].clamp_min(1e-8) * (t - 1)
    return _resample(x, pos)


def crop_resize(x: Tensor, min_scale: float = 0.5) -> Tensor:
    """A random window of [min_scale, 1] x T steps per sample, stretched back to T steps."""
    b, _, t = x.shape
    scale = min_scale + (1 - min_scale) * torch.rand(b, 1, device=x.device)
    start = (1 - scale) * torch.rand(b, 1, device=x.device)
    unit = torch.linspace(0, 1, t, device=x.device)[None]
    return _resample(x, (start + scale * unit) * (t - 1))


def time_mask(x: Tensor, ratio: float = 0.1) -> Tensor:
    """Zero a contiguous span of round(ratio * T) steps at a random place per sample."""
    b, _, t = x.shape
    span = round(ratio * t)
    start = torch.randint(0, t - span + 1, (b, 1), device=x.device)
    steps = torch.arange(t, device=x.device)[None]
    hidden = (steps >= start) & (steps < start + span)
    return x.masked_fill(hidden[:, None], 0.0)


def permute_segments(x: Tensor, segments: int = 5) -> Tensor:
    """Cut the first segments * (T // segments) steps into equal segments and put them back in
    a random order per sample (the remaining T % segments steps stay at the end)."""
    b, c, t = x.shape
    length = t // segments
    if length < 1:
        return x
    order = torch.rand(b, segments, device=x.device).argsort(dim=1)
    index = (order[:, :, None] * length + torch.arange(length, device=x.device)).flatten(1)
    tail = torch.arange(segments * length, t, device=x.device).expand(b, -1)
    index = torch.cat([index, tail], dim=1)
    return x.gather(2, index[:, None].expand(b, c, t))


OPS: dict[str, Callable[..., Tensor]] = {
    "jitter": jitter,
    "scaling": scaling,
    "magnitude_warp": magnitude_warp,
    "time_warp": time_warp,
    "crop": crop_resize,
    "time_mask": time_mask,
    "permutation": permute_segments,
}


@dataclass(frozen=True)
class SeriesRecipe:
    """A named list of (operation, probability, keyword parameters)."""

    name: str
    steps: tuple[tuple[str, float, dict[str, float]], ...]
    summary: str


SERIES_RECIPES: dict[str, SeriesRecipe] = {
    r.name: r
    for r in (
        SeriesRecipe(
            "series-default",
            (
                ("crop", 0.8, {"min_scale": 0.5}),
                ("magnitude_warp", 0.5, {"sigma": 0.2}),
                ("time_mask", 0.5, {"ratio": 0.1}),
                ("scaling", 1.0, {"sigma": 0.1}),
                ("jitter", 1.0, {"sigma": 0.03}),
            ),
            "crop-resize 0.5-1, magnitude warp, time mask 10 %, scaling, jitter",
        ),
        SeriesRecipe(
            "ts-tcc-weak",
            (("scaling", 1.0, {"sigma": 2.0}), ("jitter", 1.0, {"sigma": 0.8})),
            "TS-TCC's weak view: scaling sigma 2 and jitter",
        ),
        SeriesRecipe(
            "ts-tcc-strong",
            (("permutation", 1.0, {"segments": 5}), ("jitter", 1.0, {"sigma": 0.8})),
            "TS-TCC's strong view: permutation of 5 segments and jitter",
        ),
        SeriesRecipe(
            "series-warp",
            (
                ("time_warp", 0.8, {"sigma": 0.2}),
                ("magnitude_warp", 0.8, {"sigma": 0.2}),
                ("jitter", 1.0, {"sigma": 0.03}),
            ),
            "time warp, magnitude warp, jitter",
        ),
    )
}


class SeriesAugment:
    """`augment(x, view=i)`: the recipe applied to a batch (B, C, T), or to {"series", "mask"}
    (the series is augmented, the mask kept); every view draws its own parameters."""

    def __init__(self, recipe: str):
        if recipe not in SERIES_RECIPES:
            raise SelfsupError(
                f"unknown series recipe {recipe!r}; choose one of: {', '.join(SERIES_RECIPES)}"
            )
        self.recipe = SERIES_RECIPES[recipe]

    def __call__(self, x: Any, view: int = 0) -> Any:
        if isinstance(x, dict):
            return {**x, "series": self(x["series"], view)}
        if x.dim() != 3:
            raise SelfsupError(f"series augmentation wants (B, C, T); got {tuple(x.shape)}")
        x = x.float()
        with torch.no_grad():
            for op, p, params in self.recipe.steps:
                out = OPS[op](x, **params)
                x = out if p >= 1 else torch.where(_per_sample(x, p), out, x)
        return x

    def __repr__(self) -> str:
        return f"{self.recipe.name} ({self.recipe.summary})"
