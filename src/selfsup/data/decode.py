"""Decode one image file into a uint8 (C, H, W) tensor with C = 1 (grey) or 3 (RGB).

JPEGs go through torchvision's libjpeg-turbo decoder, everything else through Pillow.
Measured on the 60,000 CIFAR-10 JPEGs (32x32), 2-core machine, files in the page cache:
torchvision.io.decode_jpeg 15,800 img/s of CPU time, Pillow (open + asarray) 6,500 img/s.
Threads did not help: with 2 threads torchvision fell from 15-17k to 9,300 img/s and Pillow
from 8.5-9.3k to 5,400 img/s, since the per-image work is mostly Python and the torchvision
op keeps the GIL. Pillow reads PNG, BMP, TIFF, GIF and WebP and is the fallback: torchvision
returns a palette PNG's raw indices and cannot read BMP or TIFF. (On 500x375 photos, two
Pillow threads did double the rate, 285 -> 568 img/s: a thread pool would pay off there.)

`decode_image_bytes` decodes encoded bytes the same way; given `min_size`, a JPEG at least
four times that size on both sides is decoded by Pillow's reduced-size mode (`Image.draft`:
DCT scaling by 1/4 or 1/8, both sides kept >= min_size), and the caller's resize is still a
downscale. Measured on 20 upscaled CIFAR JPEGs (quality 90), one thread, decode + resize:
1000x750 to 96 px (1/4) 1.44x the full torchvision decode; at 1/2 (500x375 to 96 px, 1000x750
to 224 px) Pillow's reduced decode was no faster (0.93-0.99x), so images under 4x take the
full-size path and keep its pixels.

Both paths apply the EXIF orientation tag, so a phone photo taken upright decodes upright.
Grey images deeper than 8 bits (16-bit PNG and TIFF, 32-bit integer and float TIFF) are scaled
to 0..255 by `_scale_to_uint8`'s rule rather than clipped.
"""

from __future__ import annotations

import io
import warnings
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from selfsup.errors import SelfsupError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_JPEG_EXTENSIONS = (".jpg", ".jpeg")
_GREY_MODES = ("L", "LA", "1")
_ORIENTATION = 0x0112  # the EXIF tag; 1 is upright, 2..8 flip and/or rotate
# Bump when the same file decodes to different pixels, so that decoded-image caches rebuild.
DECODER_VERSION = 3  # 3: JPEGs of at least 4x the image size decode reduced (draft)
_REDUCE_FROM = 4  # the smallest reduction worth Pillow's reduced decode (see above)


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


def decode_image_bytes(data: bytes, name: str, min_size: int | None = None) -> torch.Tensor:
    """`decode_image_file` for encoded bytes (`name` says where they came from, and its
    extension picks the JPEG path). With `min_size`, a JPEG of at least 4 x min_size on both
    sides decodes at a reduced size whose sides stay >= min_size (other images as without)."""
    try:
        if _is_jpeg(name, data):
            if min_size is not None:
                reduced = _decode_reduced(data, min_size)
                if reduced is not None:
                    return reduced
            image = _decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
            if image is not None:
                return image
        return _decode_pillow(io.BytesIO(data))
    except Exception as e:
        raise CorruptImageError(
            f"cannot decode image {name} ({e}); delete or replace it, or pass --skip-corrupt "
            f"to leave undecodable files out"
        ) from e


def _is_jpeg(name: str, data: bytes) -> bool:
    """By the name's extension as decode_image_file judges, or for a name without an image
    extension (a member of a dataset) by the JPEG signature."""
    lower = name.lower()
    if lower.endswith(IMAGE_EXTENSIONS):
        return lower.endswith(_JPEG_EXTENSIONS)
    return data[:3] == b"\xff\xd8\xff"


def _decode_reduced(data: bytes, min_size: int) -> torch.Tensor | None:
    """Pillow's reduced-size JPEG decode; None when the image is under 4 x min_size on a side
    (too little to gain), so that the full-size path decodes it as before."""
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
        if im.format != "JPEG" or min(width // min_size, height // min_size) < _REDUCE_FROM:
            return None
        im.draft(im.mode, (min_size, min_size))  # keeps the mode; scales so both sides >= min
        return _pillow_pixels(im)


def _decode_jpeg(source: str | torch.Tensor) -> torch.Tensor | None:
    """torchvision's fast path (a file path or the encoded bytes); None (so that Pillow
    tries) on anything unusual."""
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its image IO (for torchcodec)
        warnings.simplefilter("ignore", DeprecationWarning)  # costs 2 us; Pillow is the backup
        try:
            data = read_file(source) if isinstance(source, str) else source
            image = decode_jpeg(data, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)
        except Exception:
            return None
    return image if image.dtype == torch.uint8 and image.shape[0] in (1, 3) else None


def _decode_pillow(source: str | IO[bytes]) -> torch.Tensor:
    with Image.open(source) as im:
        return _pillow_pixels(im)


def _pillow_pixels(im: Image.Image) -> torch.Tensor:
    """An opened image's pixels, upright, as uint8 (C, H, W): grey 1 channel, else RGB."""
    if im.getexif().get(_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode.startswith(("I", "F")):
        pixels = _scale_to_uint8(np.asarray(im), im.mode, im.format)
    elif im.mode == "L":
        pixels = np.asarray(im)
    else:
        pixels = np.asarray(im.convert("L" if im.mode in _GREY_MODES else "RGB"))
    if pixels.ndim == 2:
        return torch.from_numpy(pixels.copy()).unsqueeze(0)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


def _scale_to_uint8(values: np.ndarray, mode: str, image_format: str | None) -> np.ndarray:
    """Grey pixels of Pillow's 16/32-bit integer ("I;16", "I") or float ("F") modes -> uint8.

    Integer images are scaled by their bit depth, so that all images of a set share one scale:
    255 / 65535 for 16 bits ("I;16" modes, and "I" from a PNG, which older Pillow uses for
    16-bit PNGs), else judged from the values: 0..255 is kept, 0..65535 is read as 16 bits.
    Only beyond 16 bits, or negative, are the image's own min..max stretched to 0..255.
    Float images in [0, 1] map to 0..255 (x 255); others stretch their min..max to 0..255.
    A constant image outside those ranges becomes 0; NaN counts as the minimum.
    """
    x = values.astype(np.float64)
    finite = np.isfinite(x)
    low = float(x[finite].min()) if finite.any() else 0.0
    high = float(x[finite].max()) if finite.any() else 0.0
    x = np.nan_to_num(x, nan=low, posinf=high, neginf=low)
    if mode.startswith("F"):
        scale = 1.0 if low >= 0.0 and high <= 1.0 else None
    elif mode.startswith("I;16") or (mode == "I" and image_format == "PNG"):
        scale = 65535.0
    elif low >= 0 and high <= 255:
        scale = 255.0
    elif low >= 0 and high <= 65535:
        scale = 65535.0
    else:
        scale = None
    if scale is not None:
        x = x * (255.0 / scale)
    elif high > low:
        x = (x - low) * (255.0 / (high - low))
    else:
        x = np.zeros_like(x)
    return np.rint(x).clip(0, 255).astype(np.uint8)
