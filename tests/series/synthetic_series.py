"""A small labelled series set made on the spot, for convergence tests of the series methods.

Each class is a motif (a bump, a dip, a pair of bumps, a step up and back) of random width and
height placed at a random position over a smooth random background with noise. Where the motif
sits changes from series to series, so the raw signal compared step by step (Euclidean kNN) is
a weak classifier, while features that find the motif wherever it is classify it well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("bump", "dip", "double", "plateau")


def _motif(kind: str, t: np.ndarray, centre: float, width: float) -> np.ndarray:
    bump = np.exp(-0.5 * ((t - centre) / width) ** 2)
    if kind == "bump":
        return bump
    if kind == "dip":
        return -bump
    if kind == "double":
        return np.exp(-0.5 * ((t - centre + 1.5 * width) / (0.6 * width)) ** 2) + np.exp(
            -0.5 * ((t - centre - 1.5 * width) / (0.6 * width)) ** 2
        )
    return ((t > centre - 1.5 * width) & (t < centre + 1.5 * width)).astype(float)


def make_series(
    n: int, length: int = 128, seed: int = 0, noise: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """`n` series (n, 1, length) float32 and their labels (n,) int64, balanced over CLASSES."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=float)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    series = np.empty((n, 1, length), dtype=np.float32)
    for i, y in enumerate(labels):
        width = rng.uniform(0.03, 0.06) * length
        centre = rng.uniform(0.2, 0.8) * length
        height = rng.uniform(1.5, 3.0)
        phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(1, 3) / length
        background = 0.8 * np.sin(2 * np.pi * freq * t + phase)
        x = background + height * _motif(CLASSES[y], t, centre, width)
        series[i, 0] = x + noise * rng.standard_normal(length)
    return series, labels.astype(np.int64)


def write_series_npz(
    path: Path, n_train: int = 160, n_test: int = 200, length: int = 128, seed: int = 0
) -> Path:
    """A `series:` file with train and test splits and class names; returns its path."""
    train, train_labels = make_series(n_train, length, seed)
    test, test_labels = make_series(n_test, length, seed + 1)
    np.savez(
        path,
        series=train,
        labels=train_labels,
        test_series=test,
        test_labels=test_labels,
        classes=np.array(CLASSES),
    )
    return path
