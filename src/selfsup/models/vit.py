"""Vision Transformer backbones (timm's `VisionTransformer`) for MoCo v3, DINO, MAE and iGPT-style
prediction.

timm rather than torchvision: a ViT-Tiny/4 training step on 32 px CIFAR batches ran at 54 vs 46
images/s on 2 CPU cores (benchmarks/vit_backbones.py), and timm's model exposes the pieces MAE
needs (`patch_embed`, `pos_embed`, `cls_token`, `blocks`, `norm`) and interpolates position
embeddings for other image sizes (`dynamic_img_size`).

Names: `vit-mini` (CPU-sized: width 128, depth 6), `vit-tiny`, `vit-small`, `vit-base`; the patch
is 4 for small images (the CIFAR stem rule: at most 64 px) and 16 otherwise, or given by a
suffix: `vit-tiny-p2` (patch 2, e.g. for 8 px digits). A `-causal` suffix (`vit-mini-p2-causal`)
makes every block attend only to earlier tokens in raster order ([CLS] first), the encoder of
autoregressive next-patch prediction (AIM); its pooled feature is the mean of the patch tokens.
"""

from __future__ import annotations

import re

import timm.models.vision_transformer as timm_vit
import torch
from torch import nn

from selfsup.errors import SelfsupError

# name -> (width, depth, heads)
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "mini": (128, 6, 4),
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
}
_NAME = re.compile(r"^vit-(?P<size>[a-z]+)(?:-p(?P<patch>\d+))?(?P<causal>-causal)?$")


class ViTBackbone(nn.Module):
    """A ViT whose forward gives the final-norm [CLS] token (B, width): the pooled feature.

    `vit` is timm's model, for methods that need its tokens (`tokens`) or its parts (MAE).
    A causal ViT (`causal`) attends only to earlier tokens and pools the mean patch token.
    """

    def __init__(
        self, in_channels: int, img_size: int, patch: int, size: str, causal: bool = False
    ):
        super().__init__()
        self.causal = causal
        width, depth, heads = VIT_SIZES[size]
        self.patch_size = patch
        self.vit = timm_vit.VisionTransformer(
            img_size=img_size,
            patch_size=patch,
            in_chans=in_channels,
            num_classes=0,
            embed_dim=width,
            depth=depth,
            num_heads=heads,
            global_pool="token",
            dynamic_img_size=True,
        )
        self.out_dim = width

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All output tokens after the final norm, (B, 1 + patches, width); [CLS] first."""
        return self.vit.forward_features(x, is_causal=self.causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(x)
        return tokens[:, 1:].mean(dim=1) if self.causal else tokens[:, 0]


def parse_vit_name(name: str) -> tuple[str, int | None] | None:
    """(size, patch or None) for a ViT backbone name, or None when `name` is not a ViT."""
    match = _NAME.match(name)
    if not match:
        return None
    if match["size"] not in VIT_SIZES:
        raise SelfsupError(
            f"unknown ViT size in {name!r}; choose one of: "
            f"{', '.join('vit-' + s for s in VIT_SIZES)} (optionally with -pN for patch N)"
        )
    return match["size"], int(match["patch"]) if match["patch"] else None


def build_vit(name: str, in_channels: int, cifar_stem: bool) -> ViTBackbone:
    """The ViT called `name`; patch 4 at 32 px (cifar_stem) and 16 at 224 px unless named."""
    parsed = parse_vit_name(name)
    if parsed is None:
        raise SelfsupError(f"{name!r} is not a ViT backbone name (vit-tiny, vit-small-p8, ...)")
    size, patch = parsed
    patch = patch or (4 if cifar_stem else 16)
    causal = name.endswith("-causal")
    return ViTBackbone(in_channels, 32 if cifar_stem else 224, patch, size, causal=causal)
