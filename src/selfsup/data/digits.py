"""scikit-learn's built-in 8x8 digits: the default source, so that a run works anywhere, offline."""

from __future__ import annotations

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits, holdout


def load_digits_source(path: str | None, options: DataConfig) -> DataSplits:
    """1,797 grey 8x8 digits (values 0..16 scaled to 0..255), split 80/20 stratified, seed 0."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    data = ImageData(
        images=torch.from_numpy(pixels).unsqueeze(1),
        labels=torch.from_numpy(bunch.target.astype(np.int64)),
        classes=[str(d) for d in range(10)],
        name="digits",
    )
    return holdout(data, fraction=0.2, seed=0)
