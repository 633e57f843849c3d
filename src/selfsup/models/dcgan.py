"""DCGAN's networks (Radford et al. 2016), sized by the images: the generator, the
discriminator's convolutional trunk (the `dcgan` image backbone, what `gan` exports) and
BiGAN's joint discriminator of (image, code) pairs.

As the reference code (pytorch/examples dcgan/main.py, Newmu/dcgan_code): 4x4 convolutions of
stride 2 (transposed in the generator) instead of pooling, BatchNorm everywhere except the
discriminator's first layer and the generator's last, LeakyReLU 0.2 in the discriminator, ReLU
in the generator, tanh on its output, weights drawn from N(0, 0.02) (BatchNorm scales from
N(1, 0.02)), no biases before BatchNorm.

Image sizes: the trunk is fully convolutional (three stride-2 layers, 64-128-256 channels: a
side s becomes s // 8), so it takes any image of at least 8 pixels a side. The generator
"projects and reshapes" the noise to a small grid (4 to 7 pixels a side) and doubles it with
stride-2 transposed convolutions up to the images' exact size: 8 -> one doubling of 4x4,
28 -> two of 7x7, 32 -> three of 4x4, 64 -> four of 4x4 (the paper's). A side that cannot be
halved down to such a grid (odd, or under 8) is refused with what to do instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from selfsup.errors import SelfsupError

# Channels of the discriminator trunk's three stride-2 layers (the reference's ndf=64, x2, x4).
TRUNK_WIDTHS = (64, 128, 256)
# Each trunk layer's map is max-pooled to this grid and the grids concatenated: the paper's
# CIFAR-10 features ("maxpooling each layer's representation to produce a 4x4 spatial grid").
FEATURE_GRID = 4
MIN_SIDE = 8  # three halvings leave one pixel
# DCGAN's optimiser, as a method's `optimiser` (lr per 256 samples: 4e-4 is 2e-4 at batch 128)
DCGAN_OPTIMISER: dict[str, Any] = {
    "name": "adamw",
    "lr": 4e-4,
    "weight_decay": 0.0,
    "betas": (0.5, 0.999),
    "warmup": 0.0,
    "final_lr_fraction": 1.0,
}
DCGAN_OPTIMISER_REFERENCE = (
    "DCGAN's (Adam 2e-4 at batch 128, betas 0.5 / 0.999, no weight decay, constant lr)"
)


def dcgan_init(module: nn.Module) -> None:
    """The reference's weights_init: (transposed) convolutions and linear maps N(0, 0.02),
    BatchNorm scales N(1, 0.02); biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANTrunk(nn.Module):
    """The discriminator's convolutional layers: conv4x4/2 - [BN] - LeakyReLU(0.2), three times.

    `forward` gives the representation (every layer's map max-pooled to a 4x4 grid, flattened
    and concatenated, as the paper's CIFAR-10 features); `maps` gives the layers' maps, from
    which a discriminator makes its score."""

    def __init__(self, in_channels: int, widths: tuple[int, ...] = TRUNK_WIDTHS):
        super().__init__()
        blocks = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(prev, width, 4, 2, 1, bias=False)]
            if i > 0:  # no BatchNorm on the first layer (the paper: it made samples oscillate)
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            blocks.append(nn.Sequential(*layers))
            prev = width
        self.blocks = nn.ModuleList(blocks)
        self.widths = tuple(widths)
        self.pool = nn.AdaptiveMaxPool2d(FEATURE_GRID)
        self.out_dim = sum(widths) * FEATURE_GRID * FEATURE_GRID
        self.apply(dcgan_init)

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's output map for normalised images x (B, C, H, W); H, W >= 8."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pool(m).flatten(1) for m in self.maps(x)], dim=1)


def trunk_map_size(height: int, width: int, layers: int = len(TRUNK_WIDTHS)) -> tuple[int, int]:
    """The side of the trunk's last map for images of (height, width) (4x4/2/1: s -> s // 2)."""
    if min(height, width) < MIN_SIDE:
        raise SelfsupError(
            f"images of {height}x{width} are too small for the DCGAN networks (their sides must be "
            f"at least {MIN_SIDE} pixels); upsample them with --image-size {MIN_SIDE} or more"
        )
    for _ in range(layers):
        height, width = height // 2, width // 2
    return height, width


def generator_plan(height: int, width: int) -> tuple[int, int, int]:
    """(doublings, start height, start width): the noise is projected to a grid of at least 4
    pixels a side, halved from the images' size as often as both sides allow."""
    trunk_map_size(height, width)  # refuses images under 8 pixels
    doublings = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, doublings = height // 2, width // 2, doublings + 1
    if doublings == 0:
        raise SelfsupError(
            f"the DCGAN generator doubles a grid of 4 or more pixels a side up to the images' size;"
            f" {height}x{width} cannot be halved to one (an odd side): resize the images with "
            "--image-size (e.g. 32)"
        )
    return doublings, height, width


class DCGANGenerator(nn.Module):
    """Noise (B, z_dim) -> images (B, C, H, W) in [-1, 1]: project and reshape (linear-BN-ReLU),
    then transposed conv4x4/2 - BN - ReLU, the last one to the image channels with tanh.
    Channels halve per doubling, ending at `base_width` (the reference's ngf=64)."""

    def __init__(
        self, z_dim: int, channels: int, height: int, width: int, base_width: int = 64
    ) -> None:
        super().__init__()
        doublings, h0, w0 = generator_plan(height, width)
        c = base_width * 2 ** (doublings - 1)
        self.start = (c, h0, w0)
        self.project = nn.Linear(z_dim, c * h0 * w0, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for i in range(doublings):
            last = i == doublings - 1
            out = channels if last else c // 2
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=False))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(len(z), *self.start))


class ConvScore(nn.Module):
    """A score from the trunk's last map: one convolution over the whole map (the reference's
    final conv4x4 of stride 1 over the 4x4 map of 64-pixel images), no bias."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, (height, width), bias=False)
        self.apply(dcgan_init)

    def forward(self, last_map: torch.Tensor) -> torch.Tensor:
        return self.conv(last_map).flatten()


class JointDiscriminator(nn.Module):
    """BiGAN / ALI's D(x, z): x through a DCGAN trunk (its last map flattened), z through a
    two-layer LeakyReLU MLP, the two joined by a two-layer LeakyReLU MLP to one score (ALI's
    D(x), D(z), D(x, z) layout, without its dropout)."""

    def __init__(self, channels: int, height: int, width: int, z_dim: int, hidden: int = 512):
        super().__init__()
        h, w = trunk_map_size(height, width)
        self.trunk = DCGANTrunk(channels)
        self.code = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden)
        )
        self.code_act = nn.LeakyReLU(0.2)
        self.joint = nn.Sequential(
            nn.Linear(self.trunk.widths[-1] * h * w + hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of normalised images x with codes z."""
        image = self.trunk.maps(x)[-1].flatten(1)
        code = self.code_act(self.code(z))
        return self.joint(torch.cat([image, code], dim=1)).flatten()


def fixed_noise(samples: int, z_dim: int, seed: int) -> torch.Tensor:
    """A report's noise (samples, z_dim): the same at every evaluation of a run and after a
    resume (the methods keep it as a buffer, saved in checkpoints)."""
    return torch.randn(samples, z_dim, generator=torch.Generator().manual_seed(seed))


def sample_grid(images: torch.Tensor, columns: int = 8, scale: int = 1) -> np.ndarray:
    """Images in [0, 1] (B, C, H, W) as one uint8 picture (H, W, 3), `columns` a row, 1 px
    apart, each enlarged `scale` times."""
    x = images.float().clamp(0, 1).mul(255).round().to(torch.uint8)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    arrays = x.permute(0, 2, 3, 1).cpu().numpy().repeat(scale, axis=1).repeat(scale, axis=2)
    b, h, w, _ = arrays.shape
    rows = -(-b // columns)
    out = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, 3), 255, np.uint8)
    for i in range(b):
        top, left = 1 + (i // columns) * (h + 1), 1 + (i % columns) * (w + 1)
        out[top : top + h, left : left + w] = arrays[i]
    return out
