"""The raw-input baseline of images: flattened, standardised pixels, which an encoder must beat."""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.errors import SelfsupError


def raw_pixel_features(images: Tensor, reference: Tensor | None = None) -> Tensor:
    """Flattened pixels as float, each pixel position standardized to zero mean and unit std:
    the "normalized raw pixels" baseline that a learned encoder must beat.

    The statistics come from `reference` (the training bank, so that test images do not leak
    into them) or, when it is None, from `images` themselves."""
    if images.ndim < 2 or len(images) == 0:
        raise SelfsupError(f"raw_pixel_features expects (N, ...) images, got {tuple(images.shape)}")
    x = images.flatten(1).to(torch.float32, copy=True)
    ref = x if reference is None else reference.flatten(1).to(torch.float32)
    mean = ref.mean(dim=0)
    std = ref.std(dim=0, correction=0).clamp_min(1e-6)
    return x.sub_(mean).div_(std)
