"""Generated sources whose factors of variation are known and independent: content (what the
sample says) and style (how it says it), for content/style disentanglement and for any
`factors` protocol. The factors travel as `FactorLabels`, for evaluation only; the labels are
the content factor (so `knn` and `linear` score content).

- `styled-digits`: scikit-learn's 1,797 digits (8x8), each drawn in one of six colours on black,
  the colour drawn at random independently of the digit (seeded): factors digit x colour.
- `styled-waves`: 2,000 series of 128 steps, one waveform of four shapes (sine, square,
  triangle, sawtooth) at one of four amplitudes and three pitches (4, 6 or 9 periods per
  series), each with a random phase; shape, amplitude and pitch drawn independently (seeded).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.series import SeriesData
from selfsup.data.split import DataSplits, FactorLabels, holdout

# RGB of each digit colour in [0, 1]: every channel above zero, so that each colour is a
# positive per-channel gain of the grey digit (black stays black)
COLOURS = {
    "red": (1.0, 0.25, 0.25),
    "green": (0.25, 1.0, 0.25),
    "blue": (0.25, 0.25, 1.0),
    "yellow": (1.0, 1.0, 0.25),
    "magenta": (1.0, 0.25, 1.0),
    "cyan": (0.25, 1.0, 1.0),
}
SHAPES = ("sine", "square", "triangle", "sawtooth")
AMPLITUDES = (0.25, 0.5, 1.0, 2.0)
PERIODS = (4, 6, 9)  # pitches: periods per series
WAVE_LENGTH = 128
WAVE_COUNT = 2000
SEED = 0


def styled_digits(seed: int = SEED) -> ImageData:
    """Every sklearn digit in a colour drawn uniformly at random (see the module)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = torch.from_numpy(bunch.images / 16.0).float()[:, None]  # (N, 1, 8, 8) in [0, 1]
    rng = np.random.default_rng(seed)
    colour = torch.from_numpy(rng.integers(0, len(COLOURS), len(grey)))
    rgb = torch.tensor(list(COLOURS.values()))[colour][:, :, None, None]  # (N, 3, 1, 1)
    images = (grey * rgb).mul(255).round().to(torch.uint8)
    digit = torch.from_numpy(bunch.target.astype(np.int64))
    return ImageData(
        images=images,
        labels=digit,
        classes=[str(d) for d in range(10)],
        name="styled-digits",
        factors=FactorLabels(torch.stack([digit, colour], dim=1), ("digit", "colour")),
    )


def waveform(shape: str, phase: np.ndarray) -> np.ndarray:
    """One period's shape at `phase` in cycles (any real numbers), values in [-1, 1]."""
    t = np.mod(phase, 1.0)
    if shape == "sine":
        return np.sin(2 * math.pi * t)
    if shape == "square":
        return np.where(t < 0.5, 1.0, -1.0)
    if shape == "triangle":
        return 1.0 - 4.0 * np.abs(t - 0.5)
    if shape == "sawtooth":
        return 2.0 * t - 1.0
    raise ValueError(f"unknown waveform {shape!r}; choose from {', '.join(SHAPES)}")


def styled_waves(count: int = WAVE_COUNT, seed: int = SEED) -> SeriesData:
    """`count` series of shape x amplitude x pitch, random phase (see the module)."""
    rng = np.random.default_rng(seed)
    shape = rng.integers(0, len(SHAPES), count)
    amplitude = rng.integers(0, len(AMPLITUDES), count)
    pitch = rng.integers(0, len(PERIODS), count)
    start = rng.random(count)
    steps = np.arange(WAVE_LENGTH) / WAVE_LENGTH
    series = np.empty((count, 1, WAVE_LENGTH), np.float32)
    for n in range(count):
        phase = start[n] + PERIODS[pitch[n]] * steps
        series[n, 0] = AMPLITUDES[amplitude[n]] * waveform(SHAPES[shape[n]], phase)
    values = torch.from_numpy(np.stack([shape, amplitude, pitch], axis=1).astype(np.int64))
    return SeriesData(
        series=torch.from_numpy(series),
        mask=None,
        labels=values[:, 0].clone(),
        classes=list(SHAPES),
        name="styled-waves",
        factors=FactorLabels(values, ("shape", "amplitude", "pitch")),
    )


def load_styled_digits(path: str | None, options: DataConfig) -> DataSplits:
    """`styled-digits`, 20 % held out (stratified by digit, seed 0)."""
    return holdout(styled_digits(), fraction=0.2, seed=0)


def load_styled_waves(path: str | None, options: DataConfig) -> DataSplits:
    """`styled-waves`, 20 % held out (stratified by shape, seed 0)."""
    return holdout(styled_waves(), fraction=0.2, seed=0)
