"""Autoencoder: the encoder's pooled feature must carry enough to redraw the image.

Any image backbone is the encoder; its pooled feature (B, D), the same vector the exported
encoder gives, goes through a light convolutional decoder (`models.decoders.ConvDecoder`) back to
pixels, and the loss is the mean squared error against the input in normalised pixels (the
encoder's own mean/std normalisation). The classic bottleneck autoencoder (Hinton and
Salakhutdinov, Science 2006), with a deep encoder; the denoising variant is `dae`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selfsup.losses import reconstruction_mse
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.decoders import ConvDecoder, reconstruction_grid, to_uint8


@dataclass
class AutoencoderConfig:
    decoder_width: int = 128  # channels of the decoder's first 4x4 grid; halves per upsampling

    def __post_init__(self) -> None:
        if self.decoder_width < 1:
            raise ValueError("decoder_width must be positive")


@register
class Autoencoder(Method):
    """x -> encoder -> pooled feature -> ConvDecoder -> x_hat; loss mean((x_hat - x)^2)."""

    name = "autoencoder"
    family = "reconstruction"
    paper = "Hinton & Salakhutdinov 2006, autoencoder"
    summary = "the pooled feature must carry enough to redraw the image"
    Config = AutoencoderConfig
    optimiser_reference = "no small-data setting published: the library's"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    num_views = 1  # one augmented image

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        super().__init__(spec, cfg, augment)
        h, w = spec.height_width
        size = augment.view_size(0) if augment is not None else (h, w)
        self.decoder = ConvDecoder(self.encoder.out_dim, spec.in_channels, *size, cfg.decoder_width)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] to the encoder's normalised pixels (the reconstruction target)."""
        return self.encoder.normalise(images)

    def encoder_input(self, clean: torch.Tensor) -> torch.Tensor:
        """What the encoder sees: the clean image here, a corrupted one in the DAE."""
        return clean

    def reconstruct(self, seen: torch.Tensor) -> torch.Tensor:
        """Normalised pixels redrawn from the pooled feature of `seen` (float in [0, 1])."""
        z = self.encoder(seen)
        self.watch(torch.nn.functional.normalize(z, dim=1))
        return self.decoder(z)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        clean = views[0]
        prediction = self.reconstruct(self.encoder_input(clean))
        return reconstruction_mse(prediction, self.normalise(clean)), {}

    def figure_columns(self, batch: Batch) -> tuple[list[torch.Tensor], list[str]]:
        """Normalised images for each column of the reconstruction picture, and their names."""
        clean = batch["image"].float() / 255
        return [self.normalise(clean), self.reconstruct(clean)], ["input", "reconstruction"]

    def figures(self, batch: Batch) -> dict[str, Any]:
        size = self.decoder.height, self.decoder.width
        if tuple(batch["image"].shape[-2:]) != size:
            return {}
        columns, names = self.figure_columns(batch)
        arrays = [to_uint8(self.encoder.unnormalise(c)) for c in columns]
        scale = max(1, 64 // max(size))
        title = f"{self.name}: {' | '.join(names)}"
        return {title: reconstruction_grid(arrays, scale=scale)}
