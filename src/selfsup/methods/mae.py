"""MAE (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022).

A ViT encoder sees only a random 25 % of the patches (masking by argsort of per-sample noise,
`models.masking.random_masking`); a light transformer decoder (its own width and depth, a learned
mask token, fixed 2-D sine-cosine position embeddings) receives the encoded visible tokens and a
mask token at every masked position, in the original order, and predicts every patch's pixels.
The loss is the mean squared error on the masked patches only, against targets normalised per
patch (`norm_pix_loss`). The exported encoder is the ViT alone ([CLS] feature, all patches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.losses import patch_mse
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.decoders import MAEDecoder, reconstruction_grid, to_uint8
from selfsup.models.masking import patchify, random_masking, unpatchify
from selfsup.models.vit import require_vit


@dataclass
class MAEConfig:
    # The paper masks 75 % (its figure 5: 75 % best for fine-tuning and linear probing).
    mask_ratio: float = 0.75
    # The paper's decoder is 512 wide and 8 deep (16 heads) at ImageNet (its `imagenet` preset);
    # it trains no CIFAR model, so the small-image default is ours: a lighter 256 x 4 decoder.
    decoder_dim: int = 256
    decoder_depth: int = 4
    decoder_heads: int = 8
    norm_pix_loss: bool = True  # per-patch normalised targets (the paper's better setting)

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError("mask_ratio must lie in [0, 1)")
        if self.decoder_dim % 4 or self.decoder_dim % self.decoder_heads:
            raise ValueError("decoder_dim must be divisible by 4 and by decoder_heads")
        if self.decoder_depth < 1:
            raise ValueError("decoder_depth must be at least 1")


@register
class MAE(Method):
    """Encode the visible patches, decode all positions, regress the masked patches' pixels."""

    name = "mae"
    family = "reconstruction"
    paper = "He et al. 2022, MAE"
    summary = "a ViT sees 25 % of the patches and a decoder redraws the rest"
    Config = MAEConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1.5e-4,
        "weight_decay": 0.05,
        "betas": (0.9, 0.95),
    }
    optimiser_reference = (
        "the paper's (AdamW 1.5e-4 x batch/256, wd 0.05, betas 0.9 / 0.95; it trains no CIFAR"
        " model)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "mae"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {"decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16}
    }

    def __init__(self, spec: Any, cfg: MAEConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        backbone = require_vit(self.name, self.encoder, False, "vit-tiny (vit-mini-p2 on digits)")
        self.patch = backbone.patch_size
        pixels = self.patch * self.patch * spec.in_channels
        self.decoder = MAEDecoder(
            backbone.out_dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads, pixels
        )

    def views(self, batch: Batch) -> list[torch.Tensor]:
        return [self.augment(batch["image"], view=0)]

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(predicted patches (B, N, P), target patches (B, N, P), mask (B, N)) of float images."""
        x = self.encoder.normalise(images)
        target = patchify(x, self.patch)
        masking = random_masking(x.shape[0], target.shape[1], self.cfg.mask_ratio, x.device)
        vit = self.encoder.backbone
        latent = vit.forward_features(x, keep=masking.keep)  # [CLS] + visible, (B, 1 + K, D)
        self.watch(F.normalize(vit.pool(latent), dim=1))
        grid = (x.shape[2] // self.patch, x.shape[3] // self.patch)
        return self.decoder(latent, masking.restore, grid), target, masking.mask

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prediction, target, mask = self.predict(views[0])
        return patch_mse(prediction, target, mask, self.cfg.norm_pix_loss), {}

    def figures(self, batch: Batch) -> dict[str, Any]:
        """input | masked input (masked patches grey) | reconstruction (predicted masked patches
        pasted among the visible ones, un-normalised with each target patch's mean and std)."""
        images = batch["image"].float() / 255
        prediction, target, mask = self.predict(images)
        if self.cfg.norm_pix_loss:  # the inverse of `normalise_patches` on each target patch
            mean = target.mean(dim=-1, keepdim=True)
            prediction = prediction * (target.var(dim=-1, keepdim=True) + 1e-6).sqrt() + mean
        m = mask.unsqueeze(-1)
        _, c, h, w = images.shape
        masked = unpatchify(target * (1 - m), self.patch, c, h, w)
        pasted = unpatchify(target * (1 - m) + prediction * m, self.patch, c, h, w)
        columns = [images, self.encoder.unnormalise(masked), self.encoder.unnormalise(pasted)]
        title = "mae: input | masked input | reconstruction"
        return {
            title: reconstruction_grid(
                [to_uint8(x) for x in columns], scale=max(1, 64 // max(h, w))
            )
        }
