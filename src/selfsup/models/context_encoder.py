"""The context encoder's networks (Pathak et al., CVPR 2016), sized by the images: the decoder
that paints the image back from the encoder's pooled feature, the adversarial discriminator, and
the random-block masks.

As the reference code (pathak22/context-encoder `train.lua`, BoyuanJiang/context_encoder_pytorch
`model.py`): the decoder doubles a small grid with 4x4 transposed convolutions of stride 2,
BatchNorm and ReLU; the discriminator halves the image with 4x4 convolutions of stride 2,
BatchNorm (not on its first layer) and LeakyReLU 0.2, and one linear score. Weights are drawn as
DCGAN's (`selfsup.models.dcgan.dcgan_init`). The decoder's last layer is a sigmoid: it paints
pixels in [0, 1], the range of the images the encoder takes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.models.dcgan import dcgan_init

START_SIDE = 4


class InpaintingDecoder(nn.Module):
    """Pooled feature (B, in_dim) -> image in [0, 1] (B, channels, height, width): a linear map
    to a 4x4 grid of `width` channels, (transposed conv 4x4 stride 2, BN, ReLU) until the grid
    covers the image, halving the channels (at least 16), a 3x3 conv to the channels, a bilinear
    resize to exactly height x width where needed, and a sigmoid."""

    def __init__(self, in_dim: int, channels: int, height: int, width: int, start: int = 128):
        super().__init__()
        self.size, self.start = (height, width), start
        self.project = nn.Sequential(
            nn.Linear(in_dim, start * START_SIDE * START_SIDE), nn.ReLU(inplace=True)
        )
        stages = max(0, math.ceil(math.log2(max(height, width) / START_SIDE)))
        layers: list[nn.Module] = []
        dim = start
        for _ in range(stages):
            out = max(16, dim // 2)
            layers += [
                nn.ConvTranspose2d(dim, out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            dim = out
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(dim, channels, 3, padding=1)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.start, START_SIDE, START_SIDE)
        x = self.out(self.body(x))
        if x.shape[-2:] != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


class InpaintingDiscriminator(nn.Module):
    """Normalised image (B, C, H, W) -> one real/fake score (logit) per image: (conv 4x4 stride 2,
    [BN], LeakyReLU 0.2) while the side is above 4, doubling the channels, then a linear map."""

    def __init__(self, channels: int, height: int, width: int, width_start: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        dim, h, w = channels, height, width
        out = width_start
        while min(h, w) > START_SIDE or not layers:
            layers.append(nn.Conv2d(dim, out, 4, stride=2, padding=1, bias=not layers))
            if len(layers) > 1:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            dim, h, w, out = out, h // 2, w // 2, out * 2
        self.body = nn.Sequential(*layers)
        self.score = nn.Linear(dim * h * w, 1)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.body(x).flatten(1)).squeeze(1)


def block_masks(
    batch: int,
    height: int,
    width: int,
    blocks: int,
    side: int,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random-block masks (B, 1, H, W), 1 where the input is dropped: `blocks` squares of `side`
    pixels per image at random places (they may overlap). The places are drawn on the host
    (`generator`, or the default one: no wait for the device; a resumed run draws the same)."""
    top = torch.randint(0, height - side + 1, (batch, blocks), generator=generator).to(device)
    left = torch.randint(0, width - side + 1, (batch, blocks), generator=generator).to(device)
    rows = torch.arange(height, device=device).view(1, 1, -1, 1)
    cols = torch.arange(width, device=device).view(1, 1, 1, -1)
    inside_r = (rows >= top[..., None, None]) & (rows < top[..., None, None] + side)
    inside_c = (cols >= left[..., None, None]) & (cols < left[..., None, None] + side)
    return (inside_r & inside_c).any(dim=1, keepdim=True).float()
