"""Vision Transformer backbones (timm's, docs/benchmarks.md says why) for MoCo v3, DINO, MAE, AIM.
Methods use only `ViTBackbone`'s public calls, never timm's model: a timm upgrade fails a test.

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
from timm.layers import resample_abs_pos_embed
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.masking import gather_positions

# name -> (width, depth, heads)
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "mini": (128, 6, 4),
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
}
_NAME = re.compile(r"^vit-(?P<size>[a-z]+)(?:-p(?P<patch>\d+))?(?P<causal>-causal)?$")


class ViTBackbone(nn.Module):
    """A ViT whose forward gives the pooled feature (B, width): the final-norm [CLS] token, or
    for a causal ViT (each token attends only to earlier ones) the mean patch token. `vit` is
    timm's model (whose parameter names the exported state dict keeps)."""

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
        """Input tokens (B, 1 + N, width) of images x: [CLS] then the N patch embeddings in raster
        order, plus position embeddings resampled to x's grid of patches (any image size)."""
        patches = self.vit.patch_embed(x)  # (B, rows, cols, width) with dynamic_img_size
        b, rows, cols, width = patches.shape
        pos = resample_abs_pos_embed(
            self.vit.pos_embed, (rows, cols), self.vit.patch_embed.grid_size, num_prefix_tokens=1
        )
        cls = self.vit.cls_token.expand(b, -1, -1)
        return torch.cat([cls, patches.reshape(b, rows * cols, width)], dim=1) + pos

    def forward_features(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Output tokens after the blocks and the final norm, (B, 1 + K, width), [CLS] first: of
        every patch (K = N), or only of the patches at positions `keep` (B, K) (MAE's visible
        subset, in `keep`'s order)."""
        h = self.tokens(x)
        if keep is not None:
            h = torch.cat([h[:, :1], gather_positions(h[:, 1:], keep)], dim=1)
        h = self.vit.norm_pre(h)
        for block in self.vit.blocks:
            h = block(h, is_causal=self.causal)
        return self.vit.norm(h)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pooled feature (B, width) of output tokens: [CLS], or the mean patch (causal)."""
        return tokens[:, 1:].mean(dim=1) if self.causal else tokens[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))


def require_vit(method: str, encoder: nn.Module, causal: bool, hint: str) -> ViTBackbone:
    """The encoder's ViT backbone, or a SelfsupError saying which backbone to choose."""
    backbone = getattr(encoder, "backbone", None)
    if not isinstance(backbone, ViTBackbone) or backbone.causal != causal:
        name = getattr(getattr(encoder, "spec", None), "backbone", "?")
        kind = "a causal ViT backbone" if causal else "a (non-causal) ViT backbone"
        raise SelfsupError(
            f"method {method!r} needs {kind}, not {name!r}: choose one with --set "
            f"model.backbone={hint} (or vit-tiny, vit-small-p8, ...{'-causal' if causal else ''})"
        )
    return backbone


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
