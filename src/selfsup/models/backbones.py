"""Backbones: map a normalised image batch to pooled features (heads live in the methods)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.dcgan import DCGANTrunk
from selfsup.models.vqvae import VQVAEEncoderNet


class ConvNet(nn.Module):
    """A small 4-block convnet (conv3x3-BN-ReLU-maxpool, widths 32-64-128-256, global average pool).

    Fast on CPU (about 0.39 M parameters); the reference small net of the CIFAR budget runs.
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(prev, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            # The last block keeps its resolution for the global pool.
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            prev = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


def _resnet(name: str) -> Callable[[int, bool], nn.Module]:
    def build(in_channels: int, cifar_stem: bool) -> nn.Module:
        net = getattr(torchvision.models, name)(weights=None)
        if cifar_stem:
            # CIFAR stem (SimCLR appendix B.9): 3x3 conv, stride 1, no max-pool.
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        net.out_dim = net.fc.in_features
        net.fc = nn.Identity()
        return net

    return build


BACKBONES: dict[str, Callable[[int, bool], nn.Module]] = {
    "convnet": lambda in_channels, cifar_stem: ConvNet(in_channels),
    "convnet-wide": lambda in_channels, cifar_stem: ConvNet(in_channels, (48, 96, 192, 384)),
    # DCGAN's discriminator trunk (models/dcgan.py): what `gan` trains and exports
    "dcgan": lambda in_channels, cifar_stem: DCGANTrunk(in_channels),
    "resnet18": _resnet("resnet18"),
    "resnet34": _resnet("resnet34"),
    "resnet50": _resnet("resnet50"),
    # VQ-VAE's encoder: a grid of pre-quantisation features (`feature_map`), pooled in forward
    "vqvae": lambda in_channels, cifar_stem: VQVAEEncoderNet(in_channels),
}


def available_backbones() -> list[str]:
    """Names accepted by `build_backbone` (and `--backbone`); ViTs also take `-pN` (patch N),
    `vae-conv` (the beta-VAE encoder, 10 latents) `-zN` (N latents)."""
    from selfsup.models.vit import VIT_SIZES

    return sorted([*BACKBONES, *(f"vit-{size}" for size in VIT_SIZES), "vae-conv"])


def build_backbone(name: str, in_channels: int, cifar_stem: bool) -> nn.Module:
    """Build a randomly initialised backbone whose `out_dim` attribute is its feature width."""
    from selfsup.models.vit import build_vit, parse_vit_name

    if parse_vit_name(name) is not None:
        return build_vit(name, in_channels, cifar_stem)
    from selfsup.models.vae import VAEConvEncoder, parse_vae_name

    if (latents := parse_vae_name(name)) is not None:
        return VAEConvEncoder(in_channels, latents)
    if name not in BACKBONES:
        raise SelfsupError(
            f"unknown backbone {name!r}; choose one of: {', '.join(available_backbones())}"
        )
    return BACKBONES[name](in_channels, cifar_stem)
