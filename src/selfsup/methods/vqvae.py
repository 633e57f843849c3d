"""VQ-VAE with an autoregressive prior (van den Oord et al. 2017, "Neural Discrete
Representation Learning"): images become a grid of discrete codes, and a PixelCNN learns the
codes' distribution.

Two stages by training progress (`plan`), each with its own optimiser:

1. "autoencoder", until `prior_start`: encoder -> z_e (B, D, H/4, W/4) -> nearest of K codes ->
   decoder; loss = MSE in normalised pixels + beta * ||z_e - sg[z_q]||^2 (commitment), the
   decoder's gradient copied straight through the quantiser to the encoder. The codebook is no
   parameter: it follows EMAs of the vectors each code receives (decay 0.99, all-reduced over
   processes) and restarts codes that fell out of use on encoder outputs of the batch.
2. "prior", from `prior_start`: a gated PixelCNN over the frozen encoder's codes, trained by
   maximum likelihood (cross-entropy per code).

Held-out figures (`heldout_figures`): reconstruction MSE in [0, 1] pixels, and bits per
dimension as the paper defines the model's likelihood (its section 3.2): log p(x) ~ log
p(x | z_q(x)) + log p(z_q(x)), the decoder's term a discretised Gaussian over the 256 pixel
levels (mean: the reconstruction; one learned scale, fitted to the training reconstructions with
the decoder held fixed), the prior's term the PixelCNN's (the uniform prior's log K per code
before the prior trains: `bits_per_dim_uniform_prior`, the bound VQ-VAE training assumes),
divided by C * H * W * ln 2.

The exported representation is the encoder's pre-quantisation z_e averaged over the grid (the
`vqvae` backbone's pooled feature). Settings: the paper's CIFAR-10 ones (K = 512, beta = 0.25,
EMA decay 0.99, Adam 2e-4 at batch 128) and the encoder/decoder of sonnet's
`vqvae_example.ipynb` (deepmind/sonnet) and zalandoresearch/pytorch-vq-vae; dead-code restarts
as Jukebox (openai/jukebox `vqvae/bottleneck.py`) and lucidrains' vector-quantize-pytorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.losses import (
    bits_per_dim,
    commitment_loss,
    discretized_gaussian_log_likelihood,
    perplexity,
    reconstruction_mse,
    straight_through,
)
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.code_prior import GatedPixelCNN
from selfsup.models.decoders import reconstruction_grid, to_uint8
from selfsup.models.vqvae import EMAQuantiser, VQVAEDecoder

AUTOENCODER, PRIOR = "autoencoder", "prior"
SCALE_LR_SCALE = 50.0  # the decoder scale's lr over the networks' (see update_groups)


@dataclass
class VQVAEConfig:
    num_codes: int = 512  # K, the codebook's size
    beta: float = 0.25  # commitment cost
    decay: float = 0.99  # the codebook's EMA decay
    epsilon: float = 1e-5  # Laplace smoothing of the EMA counts (sonnet's)
    restart_threshold: float = 1.0  # a code whose EMA count falls below this restarts; 0: never
    restart_seed: int = 0  # seeds the restarts' draws (with the number of updates)
    prior_start: float = 0.5  # fraction of training after which the prior trains instead
    prior_width: int = 64  # channels of the PixelCNN
    prior_layers: int = 8  # gated layers
    prior_kernel: int = 3  # odd kernel side of the gated layers
    constant_lr: bool = True  # the paper's constant Adam lr; false: the run's schedule
    sample_seed: int = 0  # the fixed draws of the report's samples from the prior

    def __post_init__(self) -> None:
        if self.num_codes < 2:
            raise ValueError("num_codes must be at least 2")
        if not self.beta >= 0:
            raise ValueError("beta must be >= 0")
        if not 0 < self.decay < 1:
            raise ValueError("decay must be in (0, 1)")
        if not self.epsilon > 0:
            raise ValueError("epsilon must be > 0")
        if not 0 < self.prior_start <= 1:
            raise ValueError("prior_start is a fraction of training in (0, 1]")
        if self.prior_width < 1 or self.prior_layers < 1:
            raise ValueError("prior_width and prior_layers must be positive")
        if self.prior_kernel < 3 or self.prior_kernel % 2 == 0:
            raise ValueError("prior_kernel must be odd and at least 3")


@register
class VQVAE(Method):
    """Discrete codes by nearest-neighbour quantisation, then a PixelCNN prior over them."""

    name = "vqvae"
    family = "generative"
    paper = "van den Oord et al. 2017, VQ-VAE"
    summary = "images as a grid of discrete codes (EMA codebook), then a PixelCNN prior on them"
    Config = VQVAEConfig
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    views_note = "none; the autoencoder reconstructs the images themselves (the paper's)"
    backbones: ClassVar[dict[str, str]] = {"image": "vqvae"}
    updates: ClassVar[tuple[str, ...]] = (AUTOENCODER, PRIOR)
    find_unused_parameters = True  # each stage trains its own networks
    unsynced_buffers = ("quantiser",)  # all-reduced in `EMAQuantiser.update`: equal on every rank
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 4e-4,  # Adam 2e-4 at batch 128 (the paper), per 256 samples
        "weight_decay": 0.0,
        "betas": (0.9, 0.999),
        "warmup": 0.0,
    }
    optimiser_reference = "the VQ-VAE paper's CIFAR-10 setting (Adam 2e-4, batch 128)"
    exported_as = "encoder (pre-quantisation features z_e, averaged over the grid)"

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        super().__init__(spec, cfg, augment)
        backbone = self.encoder.backbone
        if not hasattr(backbone, "feature_map"):
            raise SelfsupError(
                f"method vqvae needs the VQ-VAE encoder (--backbone vqvae), not "
                f"{spec.backbone!r}: it quantises a grid of features, which that backbone pools"
            )
        h, w = spec.height_width
        if h % backbone.downsample or w % backbone.downsample:
            raise SelfsupError(
                f"method vqvae needs image sides divisible by {backbone.downsample} (its encoder "
                f"halves them twice); these are {h}x{w}: resize with --image-size"
            )
        self.grid = (h // backbone.downsample, w // backbone.downsample)
        self.dims = spec.in_channels * h * w
        dim = backbone.out_dim
        self.quantiser = EMAQuantiser(
            cfg.num_codes, dim, cfg.decay, cfg.epsilon, cfg.restart_threshold, cfg.restart_seed
        )
        self.decoder = VQVAEDecoder(dim, spec.in_channels)
        # the decoder's scale on [0, 1] pixels, for the likelihood only (the decoder trains on MSE)
        self.log_scale = nn.Parameter(torch.tensor(math.log(0.1)))
        self.prior = GatedPixelCNN(
            cfg.num_codes, cfg.prior_width, cfg.prior_layers, cfg.prior_kernel
        )
        self.register_counter("vq_updates")
        self.register_counter("prior_steps")

    def views(self, batch: Batch) -> list[Any]:
        return [batch["image"]]  # uint8: the likelihood counts the 256 pixel levels

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> z_e (B, D, h, w) in fp32."""
        x = self.encoder.normalise(images.float() / 255)
        return self.encoder.backbone.feature_map(x).float()

    def codes(self, images: torch.Tensor) -> torch.Tensor:
        """The grid of codes (B, h, w) of uint8 images."""
        z = self.encode(images)
        b, d, h, w = z.shape
        return self.quantiser.nearest(z.permute(0, 2, 3, 1).reshape(-1, d)).view(b, h, w)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, h, w) -> normalised pixels."""
        return self.decoder(self.quantiser.lookup(codes).permute(0, 3, 1, 2))

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage one, the autoencoder: reconstruction + commitment (+ the decoder scale's fit)."""
        images = views[0]
        z = self.encode(images)
        self.watch(nn.functional.normalize(z.mean(dim=(2, 3)), dim=1))
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        codes = self.quantiser.nearest(flat.detach())
        z_q = self.quantiser.lookup(codes)
        quantised = straight_through(flat, z_q).view(b, h, w, d).permute(0, 3, 1, 2)
        recon = self.decoder(quantised).float()
        rec = reconstruction_mse(recon, self.encoder.normalise(images.float() / 255))
        commit = commitment_loss(flat, z_q, self.cfg.beta)
        mean01 = self.encoder.unnormalise(recon.detach())
        scale_nll = -discretized_gaussian_log_likelihood(images, mean01, self.log_scale).mean()
        if self.training:
            step = int(self.counter("vq_updates"))
            counts = self.quantiser.update(flat, codes, step)
            self.set_counter("vq_updates", step + 1)
        else:
            counts = self.quantiser.usage(codes)
        figures = {
            "reconstruction": rec.detach(),
            "commitment": commit.detach(),
            "perplexity": perplexity(counts),
            "decoder_bits_per_dim": scale_nll.detach() / math.log(2),
        }
        return rec + commit + scale_nll, figures

    def prior_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage two: the PixelCNN's NLL of the frozen encoder's codes, in nats per code."""
        with torch.no_grad():
            codes = self.codes(batch["image"])
        per_code = self.prior.nll(codes).mean() / codes[0].numel()
        if self.training:
            self.set_counter("prior_steps", self.counter("prior_steps") + 1)
        return per_code, {"prior_bits_per_code": per_code.detach() / math.log(2)}

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        fixed = self.cfg.constant_lr
        if update == PRIOR:
            return [{"params": list(self.prior.parameters()), "fixed_lr": fixed}]
        networks = [*self.encoder.parameters(), *self.decoder.parameters()]
        # the one scalar scale moves SCALE_LR_SCALE times faster: at Adam's 2e-4 a step it
        # would need thousands of steps to reach the reconstructions' error
        return [
            {"params": networks, "fixed_lr": fixed},
            {"params": [self.log_scale], "fixed_lr": fixed, "lr_scale": SCALE_LR_SCALE},
        ]

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if update == PRIOR:
            return self.prior_loss(batch)
        if update == AUTOENCODER:
            return self.loss(views, batch)
        raise SelfsupError(
            f"method vqvae has the updates {', '.join(self.updates)}, not {update!r}"
        )

    def plan(self, progress: float) -> tuple[str, ...]:
        return (AUTOENCODER,) if progress < self.cfg.prior_start else (PRIOR,)

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch["image"]
        codes = self.codes(images)
        mean01 = self.encoder.unnormalise(self.decode(codes).float())
        mse = (mean01 - images.float() / 255).pow(2).flatten(1).mean(1)
        decoder_nll = -discretized_gaussian_log_likelihood(images, mean01, self.log_scale)
        decoder_nll = decoder_nll.flatten(1).sum(1)
        uniform = codes[0].numel() * math.log(self.cfg.num_codes)
        out = {
            "reconstruction_mse": mse,
            "bits_per_dim_uniform_prior": bits_per_dim(decoder_nll + uniform, self.dims),
        }
        if self.counter("prior_steps") > 0:
            prior_nll = self.prior.nll(codes)
            out["bits_per_dim"] = bits_per_dim(decoder_nll + prior_nll, self.dims)
            out["prior_bits_per_code"] = prior_nll / (codes[0].numel() * math.log(2))
        return out

    def figures(self, batch: Batch) -> dict[str, Any]:
        images = batch["image"]
        scale = max(1, 64 // max(images.shape[-2:]))
        recon = self.encoder.unnormalise(self.decode(self.codes(images)).float())
        columns = [to_uint8(images.float() / 255), to_uint8(recon)]
        out = {"vqvae: input | reconstruction": reconstruction_grid(columns, scale=scale)}
        if self.counter("prior_steps") > 0:
            g = torch.Generator().manual_seed(self.cfg.sample_seed)
            codes = self.prior.sample(len(images), *self.grid, g, images.device)
            samples = to_uint8(self.encoder.unnormalise(self.decode(codes).float()))
            rows = samples.reshape(-1, 4, *samples.shape[1:]) if len(samples) % 4 == 0 else None
            grid = [rows[:, i] for i in range(4)] if rows is not None else [samples]
            out["vqvae: samples from the prior"] = reconstruction_grid(grid, scale=scale)
        out["vqvae: codebook usage"] = usage_picture(self.quantiser.cluster_size)
        return out


def usage_picture(counts: torch.Tensor, height: int = 96) -> np.ndarray:
    """A bar per code (EMA count of vectors it received, sorted, highest first; white ground,
    dark bars; log scale from 0.01 to the largest), one pixel wide: which codes are in use."""
    values = counts.float().clamp_min(1e-2).log10().cpu()
    values = values.sort(descending=True).values
    top = float(values[0])
    share = ((values + 2) / max(top + 2, 1e-6)).clamp(0, 1).numpy()
    picture = np.full((height, len(share), 3), 255, np.uint8)
    for i, s in enumerate(share):
        bar = round(float(s) * (height - 1))
        if bar:
            picture[height - bar :, i] = (40, 70, 140)
    return picture
