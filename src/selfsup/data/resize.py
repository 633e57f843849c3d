"""Resize images to a fixed size: scale to cover it, then a centre crop (the usual eval resize)."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

_CHUNK = 4096  # images per resize call, to bound the float work memory on large sets


def resize_to(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (..., C, H, W) -> uint8 (..., C, h, w) for size (h, w); a no-op when already so.

    The image is scaled (antialiased) so that it covers (h, w) with its aspect kept, then
    centre-cropped: for a square target this is "shorter side to N, then a centre crop".
    """
    h, w = size
    if images.shape[-2:] == (h, w):
        return images
    if images.dim() == 4 and len(images) > _CHUNK:
        return torch.cat([resize_to(c, size) for c in images.split(_CHUNK)])
    in_h, in_w = images.shape[-2:]
    scale = max(h / in_h, w / in_w)
    cover = [max(h, round(in_h * scale)), max(w, round(in_w * scale))]
    resized = F.resize(images, cover, antialias=True)
    return F.center_crop(resized, [h, w]).contiguous()


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (..., C, H, W) -> uint8 (..., C, size, size): shorter side to size, centre crop."""
    return resize_to(images, (size, size))
