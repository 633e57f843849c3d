"""Patches, MAE's random masking (argsort of per-sample noise, He et al. 2022) and the denoising
autoencoder's input corruption (Vincent et al. 2008) for self-prediction methods."""

from __future__ import annotations

from typing import NamedTuple

import torch

from selfsup.errors import SelfsupError

NOISE_TYPES = ("gaussian", "masking", "salt_and_pepper")


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, patch*patch*C): patches in raster order, pixels (row, col, chan)."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise SelfsupError(f"image size {h}x{w} is not a multiple of the patch size {patch}")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(
    patches: torch.Tensor, patch: int, channels: int, height: int, width: int
) -> torch.Tensor:
    """The inverse of `patchify`: (B, N, patch*patch*C) -> (B, C, height, width)."""
    b = patches.shape[0]
    gh, gw = height // patch, width // patch
    x = patches.reshape(b, gh, gw, patch, patch, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, height, width)


class Masking(NamedTuple):
    """One draw of random masking for a batch of N positions each.

    keep: (B, K) positions left visible, in shuffled order; mask: (B, N) 1.0 where masked,
    0.0 where visible, in the original order; restore: (B, N) the permutation that puts the
    shuffled sequence [visible..., masked...] back in the original order.
    """

    keep: torch.Tensor
    mask: torch.Tensor
    restore: torch.Tensor


def random_masking(
    batch: int,
    positions: int,
    ratio: float,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Masking:
    """Mask round(ratio * positions) positions of each sample, chosen uniformly (argsort of noise).

    At least one position stays visible, so the encoder always has an input.
    """
    if not 0.0 <= ratio < 1.0:
        raise SelfsupError(f"mask ratio must lie in [0, 1); got {ratio}")
    keep_count = max(1, positions - round(ratio * positions))
    noise = torch.rand(batch, positions, device=device, generator=generator)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    mask = torch.ones(batch, positions, device=device)
    mask[:, :keep_count] = 0.0
    mask = mask.gather(1, restore)
    return Masking(shuffle[:, :keep_count], mask, restore)


def gather_positions(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tokens (B, N, D) at positions index (B, K) -> (B, K, D)."""
    return tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def unshuffle(
    visible: torch.Tensor, mask_token: torch.Tensor, restore: torch.Tensor
) -> torch.Tensor:
    """The decoder's full sequence: visible tokens (B, K, D) then mask tokens, put back in the
    original order by `restore` (B, N); every position appears exactly once."""
    b, k, d = visible.shape
    fill = mask_token.reshape(1, 1, d).expand(b, restore.shape[1] - k, d).to(visible.dtype)
    return gather_positions(torch.cat([visible, fill], dim=1), restore)


def corrupt(
    images: torch.Tensor,
    noise: str,
    sigma: float = 0.0,
    fraction: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Corrupted copy of float images in [0, 1], (B, C, H, W).

    gaussian: x + sigma * N(0, 1) (not clipped); masking: in each image, round(fraction * H*W)
    pixels chosen at random set to 0 (all channels of a pixel together); salt_and_pepper: as many
    pixels set to 0 or 1, each with probability 1/2.
    """
    if noise not in NOISE_TYPES:
        raise SelfsupError(f"unknown noise {noise!r}; choose one of: {', '.join(NOISE_TYPES)}")
    if noise == "gaussian":
        if sigma < 0:
            raise SelfsupError(f"Gaussian noise sigma must be >= 0; got {sigma}")
        eps = torch.randn(images.shape, device=images.device, generator=generator)
        return images + sigma * eps
    if not 0.0 <= fraction <= 1.0:
        raise SelfsupError(f"the fraction of corrupted pixels must lie in [0, 1]; got {fraction}")
    b, _, h, w = images.shape
    count = round(fraction * h * w)
    order = torch.rand(b, h * w, device=images.device, generator=generator).argsort(dim=1)
    hit = torch.zeros(b, h * w, device=images.device)
    hit.scatter_(1, order[:, :count], 1.0)
    hit = hit.view(b, 1, h, w).bool()
    if noise == "masking":
        value = torch.zeros((), device=images.device, dtype=images.dtype)
    else:
        coin = torch.rand(b, 1, h, w, device=images.device, generator=generator) < 0.5
        value = coin.to(images.dtype)
    return torch.where(hit, value, images)
