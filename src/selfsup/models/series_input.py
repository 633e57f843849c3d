"""What every series encoder kind (`series`, `ts2vec`, `tstcc`) does with its input first: turn
arrays into a float tensor (N, C, T), and z-normalise each series per channel over its valid
steps inside the encoder, so that a loaded encoder needs no statistics of the training data."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from selfsup.errors import SelfsupError


def znormalise(series: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Each series (B, C, T) z-normalised per channel over its valid steps (`mask` (B, T); None:
    every step); the other steps are 0."""
    w = torch.ones_like(series[:, :1]) if mask is None else mask[:, None].to(series.dtype)
    count = w.sum(2, keepdim=True).clamp_min(1)
    mean = (series * w).sum(2, keepdim=True) / count
    var = (((series - mean) * w) ** 2).sum(2, keepdim=True) / count
    return (series - mean) / (var + 1e-8).sqrt() * w


def series_tensor(raw: Any, in_channels: int) -> torch.Tensor:
    """float32 (N, C, T) from numpy or torch series shaped (N, C, T) or (N, T) (C = 1)."""
    if isinstance(raw, str) or (isinstance(raw, (list, tuple)) and raw and isinstance(raw[0], str)):
        raise SelfsupError("this is a series encoder; pass arrays (N, C, T), not text")
    x = torch.as_tensor(np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw)
    if x.dim() == 2:
        x = x[:, None]
    if x.dim() != 3 or x.shape[1] != in_channels:
        raise SelfsupError(
            f"series must be (N, {in_channels}, T) or (N, T) for one channel; got {tuple(x.shape)}"
        )
    return x.to(torch.float32).contiguous()
