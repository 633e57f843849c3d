"""The beta-VAE networks of Higgins et al. 2017 / Burgess et al. 2018, as disentanglement_lib's
`architectures.py` builds them (`conv_encoder`, `deconv_decoder`).

Encoder: four 4x4 stride-2 convolutions (32, 32, 64, 64 channels, ReLU), a 256-unit layer and
two linear heads to the posterior's mean and log-variance. Its `forward` gives the mean mu: the
representation a VAE is evaluated by, so the backbone `vae-conv` exports it like any other.
Decoder: the mirror (256, 64x4x4, four 4x4 stride-2 transposed convolutions) to pixel logits.
At 64x64 (the papers' size) the last convolution's grid is 4x4; other sizes are pooled to it
(encoder; images under 16 pixels a side are first enlarged to 16) and cropped from the next
multiple of 16 (decoder).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from selfsup.errors import SelfsupError

LATENTS = 10  # Higgins et al. 2017 and disentanglement_lib's study on dSprites
NAME = re.compile(r"^vae-conv(?:-z(\d+))?$")


def parse_vae_name(name: str) -> int | None:
    """Latent count of a `vae-conv` / `vae-conv-zN` backbone name; None for other names."""
    match = NAME.match(name)
    if match is None:
        return None
    latents = int(match.group(1) or LATENTS)
    if latents < 1:
        raise SelfsupError(f"backbone {name!r}: a VAE needs at least one latent dimension")
    return latents


class VAEConvEncoder(nn.Module):
    """Images (normalised) -> posterior N(mu, exp(logvar)); `forward` returns mu (B, latents)."""

    def __init__(self, in_channels: int, latents: int = LATENTS):
        super().__init__()
        widths = (32, 32, 64, 64)
        layers: list[nn.Module] = []
        prev = in_channels
        for width in widths:
            layers += [nn.Conv2d(prev, width, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            prev = width
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)  # the identity on 64x64 inputs
        self.hidden = nn.Sequential(nn.Linear(prev * 16, 256), nn.ReLU(inplace=True))
        self.mean = nn.Linear(256, latents)
        self.logvar = nn.Linear(256, latents)
        self.out_dim = latents

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, latents), of q(z|x) for normalised images x."""
        if min(x.shape[-2:]) < 16:  # four stride-2 convolutions need 16 pixels
            x = nn.functional.interpolate(x, size=(max(16, x.shape[-2]), max(16, x.shape[-1])))
        h = self.hidden(self.pool(self.convs(x)).flatten(1))
        return self.mean(h), self.logvar(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]


class VAEConvDecoder(nn.Module):
    """Latents (B, latents) -> pixel logits (or means) (B, channels, height, width)."""

    def __init__(self, latents: int, channels: int, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width
        self.grid = (math.ceil(height / 16), math.ceil(width / 16))
        self.hidden = nn.Sequential(
            nn.Linear(latents, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 64 * self.grid[0] * self.grid[1]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        prev = 64
        for width_out in (64, 32, 32):
            layers += [nn.ConvTranspose2d(prev, width_out, 4, 2, 1), nn.ReLU(inplace=True)]
            prev = width_out
        layers.append(nn.ConvTranspose2d(prev, channels, 4, 2, 1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.hidden(z).view(len(z), 64, *self.grid)
        return self.deconvs(x)[..., : self.height, : self.width]
