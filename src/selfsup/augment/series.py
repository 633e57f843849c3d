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
to each sample with its own probability. Given each series' valid length (`lengths`, from a
padding mask), every operation works on the valid steps only and leaves the padding zero; the
random draws per sample do not depend on T, so a padded series gets the view it gets alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from selfsup.errors import SelfsupError


def _per_sample(x: Tensor, p: float) -> Tensor:
    """(B, 1, 1) bool: which samples an operation applied with probability p touches."""
    return torch.rand(x.shape[0], 1, 1, device=x.device) < p


def _lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    """(B, 1) float valid lengths: `lengths` (B,) or T for every sample."""
    if lengths is None:
        return torch.full((x.shape[0], 1), float(x.shape[2]), device=x.device)
    return lengths.to(device=x.device, dtype=torch.float32).reshape(-1, 1)


def _valid(x: Tensor, n: Tensor) -> Tensor:
    """(B, 1, T) bool: the steps below each sample's valid length."""
    return (torch.arange(x.shape[2], device=x.device)[None] < n)[:, None]


def _unit(t: int, n: Tensor) -> Tensor:
    """(B, t): step s / (n - 1) clamped to [0, 1]: 0..1 over each sample's valid steps."""
    steps = torch.arange(t, device=n.device, dtype=torch.float32)[None]
    return (steps / (n - 1).clamp_min(1)).clamp(max=1)


def jitter(x: Tensor, sigma: float = 0.03, lengths: Tensor | None = None) -> Tensor:
    """x + N(0, sigma^2) noise, sigma relative to each sample's standard deviation over its
    valid steps; padding stays zero."""
    n = _lengths(x, lengths)
    valid = _valid(x, n)
    w = valid.to(x.dtype)
    count = n[:, :, None]
    mean = (x * w).sum(2, keepdim=True) / count
    var = (((x - mean) * w) ** 2).sum(2, keepdim=True) / (count - 1).clamp_min(1)
    scale = var.sqrt().clamp_min(1e-8)
    return torch.where(valid, x + torch.randn_like(x) * sigma * scale, 0.0)


def scaling(x: Tensor, sigma: float = 0.1, lengths: Tensor | None = None) -> Tensor:
    """x times a factor N(1, sigma^2) drawn per sample and channel (padding stays zero)."""
    return x * (1 + sigma * torch.randn(x.shape[0], x.shape[1], 1, device=x.device))


def step_scaling(
    x: Tensor, sigma: float = 1.1, mean: float = 2.0, lengths: Tensor | None = None
) -> Tensor:
    """x times a factor N(mean, sigma^2) drawn per sample and time step, shared by the channels:
    TS-TCC's `scaling` (its factor has shape (batch, steps)); padding, zero, stays zero."""
    return x * (mean + sigma * torch.randn(x.shape[0], 1, x.shape[2], device=x.device))


def _smooth_curves(n: Tensor, t: int, knots: int, sigma: float) -> Tensor:
    """(B, t) curves through `knots` + 2 Gaussian N(1, sigma^2) values spread evenly over each
    sample's valid steps (n, (B, 1)), linearly interpolated; constant beyond them."""
    k = 1 + sigma * torch.randn(n.shape[0], knots + 2, device=n.device)
    pos = _unit(t, n) * (knots + 1)
    lo = pos.floor().long().clamp(max=knots)
    frac = pos - lo
    return k.gather(1, lo) * (1 - frac) + k.gather(1, lo + 1) * frac


def magnitude_warp(
    x: Tensor, sigma: float = 0.2, knots: int = 4, lengths: Tensor | None = None
) -> Tensor:
    """x times a smooth random curve per sample over its valid steps (shared by its channels)."""
    return x * _smooth_curves(_lengths(x, lengths), x.shape[2], knots, sigma)[:, None]


def _resample(x: Tensor, positions: Tensor) -> Tensor:
    """x (B, C, T) read at fractional step positions (B, T') in [0, T - 1], linearly
    interpolated between the two steps around each position."""
    b, c, t = x.shape
    lo = positions.floor().long().clamp(0, t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    frac = (positions - lo).clamp(0, 1)[:, None]
    size = (b, c, positions.shape[1])
    left, right = x.gather(2, lo[:, None].expand(size)), x.gather(2, hi[:, None].expand(size))
    return left + (right - left) * frac


def time_warp(
    x: Tensor, sigma: float = 0.2, knots: int = 4, lengths: Tensor | None = None
) -> Tensor:
    """x read along a smooth random monotone time map from step 0 to the last valid step."""
    t = x.shape[2]
    n = _lengths(x, lengths)
    valid = _valid(x, n)
    speed = _smooth_curves(n, t, knots, sigma).clamp_min(0.1) * valid[:, 0]
    pos = torch.cumsum(speed, dim=1) - speed[:, :1]
    end = pos.gather(1, (n.long() - 1).clamp_min(0))
    pos = (pos / end.clamp_min(1e-8) * (n - 1)).clamp(max=n - 1)
    return torch.where(valid, _resample(x, pos), 0.0)


def crop_resize(x: Tensor, min_scale: float = 0.5, lengths: Tensor | None = None) -> Tensor:
    """A random window of [min_scale, 1] x the valid steps per sample, stretched back over them."""
    b, _, t = x.shape
    n = _lengths(x, lengths)
    scale = min_scale + (1 - min_scale) * torch.rand(b, 1, device=x.device)
    start = (1 - scale) * torch.rand(b, 1, device=x.device)
    pos = (start + scale * _unit(t, n)) * (n - 1)
    return torch.where(_valid(x, n), _resample(x, pos), 0.0)


def time_mask(x: Tensor, ratio: float = 0.1, lengths: Tensor | None = None) -> Tensor:
    """Zero a contiguous span of round(ratio x valid steps) at a random place inside them."""
    n = _lengths(x, lengths)
    span = (ratio * n).round()
    start = (torch.rand(x.shape[0], 1, device=x.device) * (n - span + 1)).floor()
    steps = torch.arange(x.shape[2], device=x.device)[None]
    hidden = (steps >= start) & (steps < start + span)
    return x.masked_fill(hidden[:, None], 0.0)


def permute_segments(x: Tensor, max_segments: int = 5, lengths: Tensor | None = None) -> Tensor:
    """TS-TCC's permutation: each sample's L valid steps are cut into n segments, n uniform in
    1..max_segments - 1, at n - 1 distinct points drawn uniformly among steps 0..L-3 (a cut at
    step 0 leaves an empty first segment, as the reference's `np.split`), and the segments are
    put back in a random order; padding stays where it is. The draws do not depend on T."""
    b, c, t = x.shape
    cuts = max_segments - 2
    if cuts < 1:
        return x
    room = (_lengths(x, lengths) - 2).clamp_min(0).long()  # cut points among steps 0..L-3
    n = torch.randint(1, max_segments, (b, 1), device=x.device)
    u = torch.rand(b, cuts, device=x.device)
    points = drawn = torch.empty(b, 0, dtype=torch.long, device=x.device)  # drawn: sorted
    for j in range(cuts):  # j-th point uniform among the room - j not drawn yet: distinct
        point = (u[:, j : j + 1] * (room - j).clamp_min(1)).floor().long()
        for i in range(j):  # step over the points drawn before, in ascending order
            point = point + (point >= drawn[:, i : i + 1]).long()
        points = torch.cat([points, point], 1)
        drawn = points.sort(1).values
    slots = torch.arange(cuts, device=x.device)[None]
    used = (slots < n - 1) & (slots < room)
    steps = torch.arange(t, device=x.device)
    # the segment of each step: how many used cut points lie at or before it
    segment = ((points[:, None, :] <= steps[None, :, None]) & used[:, None]).sum(2)
    rank = torch.rand(b, max_segments, device=x.device).argsort(dim=1).argsort(dim=1)
    valid = steps[None] < _lengths(x, lengths)
    key = torch.where(valid, rank.gather(1, segment) * t + steps, max_segments * t + steps)
    index = key.argsort(dim=1)
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
    """`augment(x, view=i)`: the recipe applied to a batch (B, C, T), or to {"series", "mask"}:
    then every operation works on each series' valid steps only (crops, warps and masks inside
    them, jitter scaled by their deviation), padding stays zero and the view keeps the mask, so
    a padded series gets the view it would get alone. The valid steps are a prefix (padding at
    the end, as the loaders make it). Every view draws its own parameters."""

    def __init__(self, recipe: str):
        if recipe not in SERIES_RECIPES:
            raise SelfsupError(
                f"unknown series recipe {recipe!r}; choose one of: {', '.join(SERIES_RECIPES)}"
            )
        self.recipe = SERIES_RECIPES[recipe]

    def __call__(self, x: Any, view: int = 0) -> Any:
        if isinstance(x, dict):
            series, mask = x["series"], x.get("mask")
            if mask is None:
                return {**x, "series": self._apply(series, None)}
            series = series.masked_fill(~mask.bool()[:, None], 0.0)
            return {**x, "series": self._apply(series, mask.sum(1))}
        return self._apply(x, None)

    def _apply(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        if x.dim() != 3:
            raise SelfsupError(f"series augmentation wants (B, C, T); got {tuple(x.shape)}")
        x = x.float()
        with torch.no_grad():
            for op, p, params in self.recipe.steps:
                out = OPS[op](x, lengths=lengths, **params)
                x = out if p >= 1 else torch.where(_per_sample(x, p), out, x)
        return x

    def __repr__(self) -> str:
        return f"{self.recipe.name} ({self.recipe.summary})"
