"""Resize images to a square: shorter side to `size`, then a centre crop (the usual eval resize)."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

_CHUNK = 4096  # images per resize call, to bound the float work memory on large sets


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (..., C, H, W) -> uint8 (..., C, size, size); a no-op when already that size."""
    if images.shape[-2:] == (size, size):
        return images
    if images.dim() == 4 and len(images) > _CHUNK:
        return torch.cat([resize_square(c, size) for c in images.split(_CHUNK)])
    resized = F.resize(images, size, antialias=True)
    return F.center_crop(resized, [size, size]).contiguous()
