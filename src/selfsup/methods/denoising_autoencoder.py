"""Denoising autoencoder (Vincent et al., "Extracting and Composing Robust Features with
Denoising Autoencoders", ICML 2008): redraw the clean image from a corrupted one.

The encoder sees the image after `noise` (`models.masking.corrupt`): "masking" sets a fixed
fraction of pixels to 0 (the paper's masking noise; it reports destruction fractions 10-50 %,
25 % a common choice, our default), "salt_and_pepper" sets that fraction to 0 or 1 at random, and
"gaussian" adds N(0, sigma^2) (Vincent et al. 2010 use both). The loss is the mean squared error
of the reconstruction against the clean input in normalised pixels; the exported encoder is the
encoder alone and sees clean images downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.methods.autoencoder import Autoencoder, AutoencoderConfig
from selfsup.methods.base import Batch
from selfsup.methods.registry import register
from selfsup.models.masking import NOISE_TYPES, corrupt


@dataclass
class DAEConfig(AutoencoderConfig):
    noise: str = "masking"  # gaussian | masking | salt_and_pepper
    fraction: float = 0.25  # masking / salt_and_pepper: fraction of pixels corrupted
    sigma: float = 0.1  # gaussian: standard deviation on [0, 1] pixels

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise not in NOISE_TYPES:
            raise ValueError(f"noise must be one of {', '.join(NOISE_TYPES)}; got {self.noise!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must lie in [0, 1]")
        if self.sigma < 0:
            raise ValueError("sigma must be >= 0")


@register
class DenoisingAutoencoder(Autoencoder):
    """corrupt(x) -> encoder -> pooled feature -> ConvDecoder -> x_hat; loss mean((x_hat - x)^2)."""

    name = "dae"
    family = "reconstruction"
    paper = "Vincent et al. 2008, denoising autoencoder"
    summary = "redraw the clean image from a corrupted one"
    Config = DAEConfig
    optimiser_reference = "no small-data setting published: the library's"

    def encoder_input(self, clean: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        return corrupt(clean, cfg.noise, sigma=cfg.sigma, fraction=cfg.fraction)

    def figure_columns(self, batch: Batch) -> tuple[list[torch.Tensor], list[str]]:
        clean = batch["image"].float() / 255
        noised = self.encoder_input(clean)
        columns = [self.normalise(clean), self.normalise(noised), self.reconstruct(noised)]
        return columns, ["input", f"{self.cfg.noise} noise", "reconstruction"]
