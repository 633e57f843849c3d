"""Batched augmentations of series (B, C, T) float, with per-sample random parameters drawn on
the batch's device in one go (no Python loop over samples), and named recipes.

The operations follow the time-series augmentation survey of Um et al. (2017) and the recipes
of TS-TCC (Eldele et al., 2021): jitter (added Gaussian noise), scaling (a Gaussian factor per
sample and channel), magnitude warping (a smooth random curve multiplies the signal: Gaussian
knots, linearly interpolated), time warping (a smooth random monotone time map: positive random
speeds at knots, integrated), cropping (a random window resized back to T), time masking (a
random contiguous span set to zero), TS-TCC's step scaling (a Gaussian factor per sample and
time step) and permutation of segments (the series cut at random points into a random number of
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


def step_scaling(x: Tensor, sigma: float = 1.1, mean: float = 2.0) -> Tensor:
    """x times a factor N(mean, sigma^2) drawn per sample and time step, shared by the channels:
    TS-TCC's `scaling` (its factor has shape (batch, steps))."""
    return x * (mean + sigma * torch.randn(x.shape[0], 1, x.shape[2], device=x.device))


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


def permute_segments(x: Tensor, max_segments: int = 5) -> Tensor:
    """TS-TCC's permutation: each sample is cut into n segments, n uniform in
    1..max_segments - 1, at n - 1 distinct random points among steps 0..T-3 (a cut at step 0
    leaves an empty first segment, as the reference's), and the segments are put back in a
    random order."""
    b, c, t = x.shape
    cuts = max_segments - 2
    if cuts < 1 or t < 4:
        return x
    n = torch.randint(1, max_segments, (b, 1), device=x.device)
    points = torch.rand(b, t - 2, device=x.device).argsort(dim=1)[:, :cuts]  # distinct
    used = torch.arange(cuts, device=x.device)[None] < n - 1
    steps = torch.arange(t, device=x.device)
    # the segment of each step: how many used cut points lie at or before it
    segment = ((points[:, None, :] <= steps[None, :, None]) & used[:, None]).sum(2)
    rank = torch.rand(b, max_segments, device=x.device).argsort(dim=1).argsort(dim=1)
    index = (rank.gather(1, segment) * t + steps).argsort(dim=1)
    return x.gather(2, index[:, None].expand(b, c, t))


OPS: dict[str, Callable[..., Tensor]] = {
    "jitter": jitter,
    "scaling": scaling,
    "magnitude_warp": magnitude_warp,
    "time_warp": time_warp,
    "crop": crop_resize,
    "time_mask": time_mask,
    "permutation": permute_segments,
    "step_scaling": step_scaling,
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
        # TS-TCC's reference (`DataTransform`, HAR config: jitter_scale_ratio 1.1, jitter_ratio
        # 0.8, max_seg 8): weak = its scaling alone, strong = permutation then jitter
        SeriesRecipe(
            "ts-tcc-weak",
            (("step_scaling", 1.0, {"sigma": 1.1, "mean": 2.0}),),
            "TS-TCC's weak view: a factor N(2, 1.1^2) per time step",
        ),
        SeriesRecipe(
            "ts-tcc-strong",
            (("permutation", 1.0, {"max_segments": 8}), ("jitter", 1.0, {"sigma": 0.8})),
            "TS-TCC's strong view: permutation of up to 7 random segments, jitter 0.8",
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
