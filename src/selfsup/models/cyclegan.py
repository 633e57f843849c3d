"""CycleGAN's networks, sized for small images (Zhu et al. 2017; the reference is
junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py: ResnetGenerator, NLayerDiscriminator).

- The generator: a 7x7 convolution (reflection padded), `down` stride-2 3x3 convolutions
  doubling the width, `blocks` residual blocks, as many transposed convolutions back, a 7x7
  convolution to the image's channels and tanh; instance norm (no affine, no running
  statistics) and ReLU throughout; images in [-1, 1]. The reference: 64 wide, 2 down, 6 blocks
  at 128 px and 9 at 256 px.
- Its front (every layer up to the last residual block) is the encoder kind "cyclegan": the
  A -> B generator's encoder, globally average-pooled, is what a CycleGAN run exports
  (`CycleGANEncoder`, loadable with `selfsup.load` like any encoder).
- The PatchGAN discriminator: 4x4 convolutions, `layers` of stride 2 (the first without norm),
  one of stride 1, and a 1-channel stride-1 output of one score per patch; LeakyReLU 0.2. The
  reference's 3 layers see 70x70 patches; 1 layer sees 16x16, 2 see 34x34.
- Weights start as the reference's `init_type="normal"`: N(0, 0.02), biases 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.models.encoder import ImageEncoderSpec, preprocess_images


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """The reference's initialisation of every convolution: N(0, std) weights, zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """x + (pad, 3x3 conv, norm, ReLU, pad, 3x3 conv, norm), reflection padded."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            _norm(width),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            _norm(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def sizes_for(side: int) -> tuple[int, int, int]:
    """(down, blocks, discriminator layers) for images of `side` pixels: the reference's 2 down,
    6 blocks and 3 layers at 128 px; fewer for small images, so that the 7x7 reflection pad and
    the patches fit (8 px digits: 1, 3, 1; 28 px: 2, 3, 2)."""
    down = 1 if side <= 16 else 2
    blocks = 3 if side <= 32 else (6 if side <= 128 else 9)
    layers = 1 if side <= 16 else (2 if side <= 64 else 3)
    return down, blocks, layers


@dataclass(frozen=True)
class CycleGANEncoderSpec(ImageEncoderSpec):
    """An image encoder spec plus the generator's width, downsamplings and residual blocks."""

    kind: ClassVar[str] = "cyclegan"

    width: int = 32
    down: int = 2
    blocks: int = 3


def generator_front(channels: int, width: int, down: int, blocks: int) -> nn.Sequential:
    """The generator up to its last residual block: (B, C, H, W) -> (B, width * 2**down, ...)."""
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        nn.Conv2d(channels, width, 7),
        _norm(width),
        nn.ReLU(True),
    ]
    for i in range(down):
        w = width * 2**i
        layers += [nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), _norm(2 * w), nn.ReLU(True)]
    layers += [ResidualBlock(width * 2**down) for _ in range(blocks)]
    return nn.Sequential(*layers)


def generator_back(channels: int, width: int, down: int) -> nn.Sequential:
    """The generator after its residual blocks: transposed convolutions back to the image's
    size, a 7x7 convolution to its channels, tanh."""
    layers: list[nn.Module] = []
    for i in reversed(range(down)):
        w = width * 2 ** (i + 1)
        layers += [
            nn.ConvTranspose2d(w, w // 2, 3, stride=2, padding=1, output_padding=1),
            _norm(w // 2),
            nn.ReLU(True),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 images, or floats in [0, 1], to [-1, 1] (the generators' range)."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    return x * 2 - 1


class CycleGANEncoder(nn.Module):
    """The A -> B generator's front, globally average-pooled: (B, C, H, W) uint8 or float in
    [0, 1] -> (B, width * 2**down)."""

    kind: ClassVar[str] = "cyclegan"

    def __init__(self, spec: CycleGANEncoderSpec):
        super().__init__()
        self.spec = spec
        self.front = generator_front(spec.in_channels, spec.width, spec.down, spec.blocks)
        self.out_dim: int = spec.width * 2**spec.down
        init_normal(self)

    def feature_map(self, signed: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] to the generator's feature map (what its back decodes)."""
        return self.front(signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(to_signed(x)).mean((2, 3))

    def preprocess(self, raw: Any) -> torch.Tensor:
        """uint8 (N, C, H, W) for this encoder, by the image encoder's one rule."""
        return preprocess_images(raw, self.spec)


class Generator(nn.Module):
    """An image of one domain in [-1, 1] to the other domain's, in [-1, 1]."""

    def __init__(self, front: nn.Module, back: nn.Module):
        super().__init__()
        self.front, self.back = front, back

    def forward(self, signed: torch.Tensor) -> torch.Tensor:
        return self.back(self.front(signed))


def patch_discriminator(channels: int, width: int = 64, layers: int = 3) -> nn.Sequential:
    """PatchGAN: one realness score per patch, (B, C, H, W) -> (B, 1, h, w)."""
    out: list[nn.Module] = [
        nn.Conv2d(channels, width, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2, True),
    ]
    mult = 1
    for n in range(1, layers + 1):
        prev, mult = mult, min(2**n, 8)
        stride = 2 if n < layers else 1
        out += [
            nn.Conv2d(width * prev, width * mult, 4, stride=stride, padding=1),
            _norm(width * mult),
            nn.LeakyReLU(0.2, True),
        ]
    out.append(nn.Conv2d(width * mult, 1, 4, stride=1, padding=1))
    net = nn.Sequential(*out)
    init_normal(net)
    return net


def exchange_with_pool(
    pool: torch.Tensor, filled: int, fakes: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """The reference's ImagePool on a batch: the discriminator sees generated images from
    earlier steps too. While the pool has room, the images go in and come back unchanged; then
    each of the next images (at most the pool's size, on distinct slots) is, with probability
    1/2, swapped for a stored image, which it replaces. Draws come from torch's global
    generator (saved in checkpoints per process), so a resume repeats them. Returns the images
    for the discriminator and the new fill count (`pool` is updated in place)."""
    size = pool.shape[0]
    if size == 0:
        return fakes, filled
    fakes = fakes.detach()
    take = min(len(fakes), size - filled)
    if take > 0:
        pool[filled : filled + take] = fakes[:take].to(pool.dtype)
    rest = fakes[take:]
    n = min(len(rest), size)
    if n == 0:
        return fakes, filled + take
    slots = torch.randperm(size, device=pool.device)[:n]
    swap = (torch.rand(n, device=pool.device) < 0.5).view(-1, *[1] * (fakes.dim() - 1))
    stored = pool[slots]
    new = rest[:n].to(pool.dtype)
    pool[slots] = torch.where(swap, new, stored)
    shown = torch.where(swap, stored, new).to(fakes.dtype)
    return torch.cat([fakes[:take], shown, rest[n:]]), filled + take
