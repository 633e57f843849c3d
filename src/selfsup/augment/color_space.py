"""CIE Lab colour on batches of sRGB images: the channel split of CMC (L vs ab) and the target of
colorization (predict ab from L).

Written here rather than taken from kornia (not a dependency) or scikit-image (per-image NumPy):
a dozen lines of batched tensor arithmetic on the training device. sRGB with the D65 white point;
L in [0, 100], a and b roughly in [-110, 110].
"""

from __future__ import annotations

import torch
from torch import Tensor

_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE_D65 = torch.tensor([0.950456, 1.0, 1.088754])
_EPSILON = 0.008856  # (6/29)^3: below it the cube root is replaced by a line
_KAPPA = 7.787


def _as_float(x: Tensor) -> Tensor:
    return x.float().div(255) if x.dtype == torch.uint8 else x.float()


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(N, 3, H, W) sRGB, uint8 or float in [0, 1] -> (N, 3, H, W) float L, a, b."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb_to_lab expects (N, 3, H, W) images, got {tuple(rgb.shape)}")
    x = _as_float(rgb)
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055).pow(2.4), x / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(x.device), linear)
    xyz = xyz / _WHITE_D65.to(x.device).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(1e-12).pow(1 / 3), _KAPPA * xyz + 16 / 116)
    lightness = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([lightness, a, b], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """(N, 3, H, W) L, a, b -> (N, 3, H, W) sRGB float in [0, 1] (out-of-gamut values clipped)."""
    if lab.dim() != 4 or lab.shape[1] != 3:
        raise ValueError(f"lab_to_rgb expects (N, 3, H, W) Lab images, got {tuple(lab.shape)}")
    lightness, a, b = lab.float().unbind(1)
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)
    xyz = torch.where(f.pow(3) > _EPSILON, f.pow(3), (f - 16 / 116) / _KAPPA)
    xyz = xyz * _WHITE_D65.to(lab.device).view(1, 3, 1, 1)
    linear = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab.device), xyz)
    linear = linear.clamp(0, 1)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.pow(1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0, 1)
