"""Losses of pretext tasks that are more than a plain cross-entropy.

Rotation, jigsaw and relative patch position classify with `torch.nn.functional.cross_entropy`
and need nothing here. Colorization regresses colour.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def ab_regression(pred: Tensor, target: Tensor, huber_delta: float = 0.0) -> Tensor:
    """Mean regression loss between predicted and true Lab colour channels (N, 2, H, W).

    L = mean over n, channel, pixel of  (pred - target)^2 / 2           when huber_delta = 0,
        or of the Huber loss with threshold delta (quadratic within delta, linear beyond).

    The regression form of colorization (Zhang, Isola & Efros, ECCV 2016, section 2.1 discuss
    it as the baseline to their 313-bin classification, which resists desaturation better); a
    Huber loss damps the pull of rare saturated pixels. Inputs are in whatever scale the method
    chooses (ours: ab / 110, so about [-1, 1]).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if huber_delta < 0:
        raise ValueError("huber_delta must be >= 0 (0: squared error)")
    if huber_delta == 0:
        return 0.5 * F.mse_loss(pred, target)
    return F.huber_loss(pred, target, delta=huber_delta)
