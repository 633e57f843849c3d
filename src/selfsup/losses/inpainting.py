"""The context encoder's reconstruction loss (Pathak et al., CVPR 2016, "Context Encoders:
Feature Learning by Inpainting", section 3.2) and the weights it puts on the pixels.

    L_rec = mean over the predicted region of  w * (x - F((1 - M) * x))^2

The central-region mask predicts the central square (half the side) from the image with a
smaller hole: the border of the square, `overlap` pixels wide, stays visible in the input and
its prediction is weighted 10 times (the paper's 7 px overlap at 227 px; 4 px at 128 px in
pathak22/context-encoder `train.lua` and BoyuanJiang/context_encoder_pytorch `train.py`). A
random-block mask weights the dropped pixels 1 and the rest 0. The joint loss is
lambda_rec * L_rec + lambda_adv * L_adv with the paper's 0.999 and 0.001.
"""

from __future__ import annotations

import torch
from torch import Tensor

OVERLAP_WEIGHT = 10.0  # the paper's weight of the overlapping border


def central_box(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the central region: half the side, centred (the paper's)."""
    h, w = height // 2, width // 2
    return (height - h) // 2, (width - w) // 2, h, w


def central_weights(
    height: int, width: int, overlap: int, overlap_weight: float = OVERLAP_WEIGHT
) -> tuple[Tensor, Tensor]:
    """(weights, hole), each (height, width): the loss's weights (overlap_weight on the border
    of the central square `overlap` pixels wide, 1 inside it, 0 outside) and the hole the input
    loses (the square less its border)."""
    top, left, h, w = central_box(height, width)
    if h < 1 or w < 1 or 2 * overlap >= min(h, w):
        raise ValueError(
            f"a {height}x{width} image has a {h}x{w} central square: too small for an overlap of "
            f"{overlap} px on each side"
        )
    weights = torch.zeros(height, width)
    weights[top : top + h, left : left + w] = overlap_weight
    hole = torch.zeros(height, width)
    inner = (slice(top + overlap, top + h - overlap), slice(left + overlap, left + w - overlap))
    weights[inner] = 1.0
    hole[inner] = 1.0
    return weights, hole


def weighted_region_mse(pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Mean of weights * (pred - target)^2 over the channels and the pixels of non-zero weight.

    pred, target: (B, C, H, W); weights (H, W) or (B, 1, H, W), >= 0. The central mask's
    weights give the reference code's loss (the mean over the central square of the weighted
    squared error); a block mask's 0/1 weights the mean squared error of the dropped pixels.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    weights = weights.expand(pred.shape[0], 1, *pred.shape[-2:]).to(pred.dtype)
    count = (weights > 0).sum() * pred.shape[1]
    return (weights * (pred - target).pow(2)).sum() / count.clamp(min=1)


def joint_inpainting_loss(
    reconstruction: Tensor, adversarial: Tensor, lambda_rec: float, lambda_adv: float
) -> Tensor:
    """lambda_rec * L_rec + lambda_adv * L_adv (the paper: 0.999 and 0.001)."""
    return lambda_rec * reconstruction + lambda_adv * adversarial
