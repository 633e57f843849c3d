"""Light decoders back to pixels for self-prediction methods (`ConvDecoder`: autoencoders;
`MAEDecoder`: MAE) and `reconstruction_grid`, the report's picture of reconstructions."""

from __future__ import annotations

import math

import numpy as np
import timm.models.vision_transformer as timm_vit
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.models.masking import unshuffle

START_SIDE = 4


class ConvDecoder(nn.Module):
    """Pooled feature (B, in_dim) -> normalised pixels (B, channels, height, width): a linear map
    to a 4x4 grid, (upsample x2, conv 3x3, ReLU) until it covers the image, a bilinear resize to
    exactly height x width and a 1x1 conv to the channels."""

    def __init__(self, in_dim: int, channels: int, height: int, width: int, width_start: int = 128):
        super().__init__()
        self.height, self.width = height, width
        stages = max(0, math.ceil(math.log2(max(height, width) / START_SIDE)))
        self.width_start = width_start
        self.project = nn.Linear(in_dim, width_start * START_SIDE * START_SIDE)
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        dim = width_start
        for _ in range(stages):
            out = max(16, dim // 2)
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(dim, out, 3, padding=1),
                nn.ReLU(inplace=True),
            ]
            dim = out
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(dim, channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.width_start, START_SIDE, START_SIDE)
        x = self.body(x)
        if x.shape[-2:] != (self.height, self.width):
            x = F.interpolate(x, size=(self.height, self.width), mode="bilinear")
        return self.out(x)


def sincos_position_embedding(dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings (grid_h * grid_w, dim), raster order: half the
    channels encode the row, half the column, each as sin/cos at geometric frequencies."""
    if dim % 4:
        raise ValueError(f"sine-cosine position embeddings need a width divisible by 4; got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64),
        torch.arange(grid_w, dtype=torch.float64),
        indexing="ij",
    )
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angle = coord[:, None] * omega[None]
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, dim=1).float()


class MAEDecoder(nn.Module):
    """Encoded visible tokens ([CLS] first) -> predicted pixels of every patch (B, N, p*p*C)."""

    def __init__(self, enc_dim: int, dim: int, depth: int, heads: int, patch_pixels: int):
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.ModuleList(
            timm_vit.Block(dim, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.predict = nn.Linear(dim, patch_pixels)
        self.dim = dim

    def forward(self, encoded: torch.Tensor, restore: torch.Tensor, grid: tuple[int, int]):
        """encoded: (B, 1 + K, enc_dim), [CLS] then the K visible tokens in shuffled order;
        restore: (B, N) from `random_masking`; grid: (rows, cols) of patches, N = rows * cols."""
        x = self.embed(encoded)
        cls, visible = x[:, :1], x[:, 1:]
        full = unshuffle(visible, self.mask_token, restore)
        pos = sincos_position_embedding(self.dim, *grid).to(full.device, full.dtype)
        x = torch.cat([cls, full + pos], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.predict(self.norm(x))[:, 1:]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [0, 1] (B, C, H, W) to uint8 (B, H, W, 3) for a picture (clipped)."""
    x = images.float().clamp(0, 1).mul(255).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def reconstruction_grid(columns: list[np.ndarray], scale: int = 1, gap: int = 1) -> np.ndarray:
    """One uint8 picture (H, W, 3): a row per sample, the given columns (each (B, h, w, 3)) side by
    side (e.g. input | noised input | reconstruction), `gap` white pixels apart, each image
    enlarged `scale` times (tiny 8 px digits are unreadable otherwise)."""
    b, h, w, _ = columns[0].shape
    hs, ws = h * scale, w * scale
    out = np.full(
        (b * hs + (b + 1) * gap, len(columns) * ws + (len(columns) + 1) * gap, 3), 255, np.uint8
    )
    for j, column in enumerate(columns):
        big = column.repeat(scale, axis=1).repeat(scale, axis=2)
        for i in range(b):
            top, left = gap + i * (hs + gap), gap + j * (ws + gap)
            out[top : top + hs, left : left + ws] = big[i]
    return out
