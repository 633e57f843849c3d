"""Decode one image file into a uint8 (C, H, W) tensor with C = 1 (grey) or 3 (RGB).

JPEGs go through torchvision's libjpeg-turbo decoder, everything else through Pillow.
Measured on the 60,000 CIFAR-10 JPEGs (32x32), 2-core machine, files in the page cache:
torchvision.io.decode_jpeg 15,800 img/s of CPU time, Pillow (open + asarray) 6,500 img/s.
Threads did not help: with 2 threads torchvision fell from 15-17k to 9,300 img/s and Pillow
from 8.5-9.3k to 5,400 img/s, since the per-image work is mostly Python and the torchvision
op keeps the GIL. Pillow reads PNG, BMP, TIFF, GIF and WebP and is the fallback: torchvision
returns a palette PNG's raw indices and cannot read BMP or TIFF. (On 500x375 photos, two
Pillow threads did double the rate, 285 -> 568 img/s: a thread pool would pay off there.)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from selfsup.errors import SelfsupError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_JPEG_EXTENSIONS = (".jpg", ".jpeg")
_GREY_MODES = ("L", "LA", "1", "I", "F")


class CorruptImageError(SelfsupError):
    """An image file that no decoder could read."""


def decode_image_file(path: str) -> torch.Tensor:
    """uint8 (C, H, W): grey images keep 1 channel; colour, palette, alpha and CMYK become RGB."""
    if path.lower().endswith(_JPEG_EXTENSIONS):
        image = _decode_jpeg(path)
        if image is not None:
            return image
    try:
        return _decode_pillow(path)
    except Exception as e:
        raise CorruptImageError(
            f"cannot decode image {path} ({e}); delete or replace it, or pass --skip-corrupt "
            f"to leave undecodable files out"
        ) from e


def _decode_jpeg(path: str) -> torch.Tensor | None:
    """torchvision's fast path; None (so that Pillow tries) on anything unusual."""
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its image IO (for torchcodec)
        warnings.simplefilter("ignore", DeprecationWarning)  # costs 2 us; Pillow is the backup
        try:
            image = decode_jpeg(read_file(path), mode=ImageReadMode.UNCHANGED)
        except Exception:
            return None
    return image if image.dtype == torch.uint8 and image.shape[0] in (1, 3) else None


def _decode_pillow(path: str) -> torch.Tensor:
    with Image.open(path) as im:
        if im.mode.startswith("I;16"):  # 16-bit grey: keep the top 8 bits
            pixels = (np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8)
        elif im.mode == "L":
            pixels = np.asarray(im)
        else:
            pixels = np.asarray(im.convert("L" if im.mode in _GREY_MODES else "RGB"))
    if pixels.ndim == 2:
        return torch.from_numpy(pixels.copy()).unsqueeze(0)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()
