"""What the density models of binary images (RBM, NADE) share: the binarisation of their input
and the image handling of their encoders (grey images of the training size, flattened)."""

from __future__ import annotations

from typing import Any

import torch

from selfsup.errors import SelfsupError


class GreyImageSpec:
    """What the image modality reads of an encoder's spec (size and channels: the report's
    augmentation preview), for the specs of the binary density models; needs `image_size`."""

    image_size: tuple[int, int]
    in_channels = 1
    channel_groups: tuple[tuple[str, int], ...] = ()

    @property
    def height_width(self) -> tuple[int, int]:
        return self.image_size

    @property
    def visible(self) -> int:
        """D, the pixels (visible units) per image."""
        return self.image_size[0] * self.image_size[1]


def binarise(images: torch.Tensor) -> torch.Tensor:
    """Images (B, 1, H, W), uint8 or float in [0, 1], to visible vectors (B, H * W) of floats in
    {0, 1}: a pixel is on when above half its range (uint8 > 127, float > 0.5), so every run
    and every evaluation sees the same bits (no sampling)."""
    on = images > 127 if images.dtype == torch.uint8 else images > 0.5
    return on.flatten(1).float()


def check_grey(method: str, in_channels: int) -> None:
    """Refuse colour images: the density models take one bit per pixel of grey images."""
    if in_channels != 1:
        raise SelfsupError(
            f"{method} models binary pixels of grey images; this data has {in_channels} "
            "channels. Train it on grey images (digits, fashion-mnist, mnist, or an npy/folder "
            "source of grey images)"
        )


def preprocess_grey(raw: Any, image_size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, 1, H, W) at the training size from images as a user holds them (the image
    encoders' rule: RGB becomes grey, other sizes are resized)."""
    from selfsup.models.encoder import ImageEncoderSpec, preprocess_images

    spec = ImageEncoderSpec("convnet", 1, image_size, True, (0.0,), (1.0,))
    return preprocess_images(raw, spec)


def tile(images: torch.Tensor, columns: int = 8, scale: int = 4, gap: int = 1) -> Any:
    """One uint8 picture (H', W', 3) of images (N, h, w) in [0, 1], `columns` to a row, each
    enlarged `scale` times, `gap` white pixels apart (samples and filters for the report)."""
    import numpy as np

    n, h, w = images.shape
    rows = -(-n // columns)
    hs, ws = h * scale, w * scale
    out = np.full((rows * hs + (rows + 1) * gap, columns * ws + (columns + 1) * gap), 255, np.uint8)
    pixels = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    for i in range(n):
        r, c = divmod(i, columns)
        top, left = gap + r * (hs + gap), gap + c * (ws + gap)
        out[top : top + hs, left : left + ws] = pixels[i].repeat(scale, 0).repeat(scale, 1)
    return np.repeat(out[:, :, None], 3, axis=2)
