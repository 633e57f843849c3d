"""VAE and beta-VAE: an image is encoded as a Gaussian posterior q(z|x), a sample of it must
redraw the image, and the posterior is pulled towards the prior N(0, I) with weight beta.

loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || N(0, I)), one reparameterised sample per image
(Kingma & Welling 2014; beta = 1 is the VAE's negative ELBO). beta > 1 (Higgins et al. 2017)
trades reconstruction for a posterior closer to the factorised prior, which tends to align
latent dimensions with the data's factors of variation (measured by the `disentanglement`
protocol: MIG and DCI). Networks, decoder likelihood and optimiser as disentanglement_lib's
study (google-research/disentanglement_lib, `methods/unsupervised/vae.py`,
`architectures.py`, `config/unsupervised_study_v1`): the `vae-conv` encoder / decoder, 10
latents, a Bernoulli decoder, Adam lr 1e-4 at batch 64 (beta1 0.9, beta2 0.999), a constant
learning rate. The exported representation is the posterior mean mu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from selfsup.errors import SelfsupError
from selfsup.losses import reparameterise, vae_terms
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.decoders import reconstruction_grid, to_uint8
from selfsup.models.vae import VAEConvDecoder

DECODERS = ("bernoulli", "gaussian")


@dataclass
class VAEConfig:
    beta: float = 1.0  # weight of the KL term: 1 is the VAE; 4 the beta-VAE on dSprites
    decoder: str = "bernoulli"  # p(x|z): bernoulli (binary images) or gaussian (fixed sigma)
    sigma: float = 1.0  # the Gaussian decoder's standard deviation, in [0, 1] pixel units
    traversal_range: float = 2.0  # the report's traversals set a latent to values in +-this
    traversal_steps: int = 9  # ... this many of them (the picture's columns)

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ValueError(f"beta must be 0 or more; got {self.beta}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {self.decoder!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive; got {self.sigma}")
        if not self.traversal_range > 0 or self.traversal_steps < 2:
            raise ValueError("traversal_range must be positive and traversal_steps at least 2")


@register
class VAE(Method):
    """x -> q(z|x) = N(mu, exp(logvar)) -> z -> p(x|z); loss -ELBO with the KL weighted by beta."""

    name = "vae"
    family = "generative"
    paper = "Kingma & Welling 2014, VAE; Higgins et al. 2017, beta-VAE"
    summary = "a Gaussian posterior whose sample redraws the image, pulled to the prior by beta"
    Config = VAEConfig
    # disentanglement_lib: Adam lr 1e-4 at batch 64 = 4e-4 per 256 samples, constant
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 4e-4,
        "weight_decay": 0.0,
        "betas": (0.9, 0.999),
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = "disentanglement_lib's study: Adam 1e-4 at batch 64, constant"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    backbones: ClassVar[dict[str, str]] = {"image": "vae-conv"}
    exported_as = "posterior mean mu of the encoder"
    num_views = 1

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        super().__init__(spec, cfg, augment)
        if not hasattr(self.encoder.backbone, "posterior"):
            raise SelfsupError(
                f"method 'vae' needs an encoder with a Gaussian posterior; backbone "
                f"{spec.backbone!r} has none: use --backbone vae-conv (or vae-conv-zN for N "
                "latents)"
            )
        h, w = spec.height_width
        size = augment.view_size(0) if augment is not None else (h, w)
        self.decoder = VAEConvDecoder(self.encoder.out_dim, spec.in_channels, *size)

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x) for float images in [0, 1]."""
        return self.encoder.backbone.posterior(self.encoder.normalise(images))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output: Bernoulli logits or Gaussian means, (B, C, H, W)."""
        return self.decoder(z)

    def pixels(self, decoded: torch.Tensor) -> torch.Tensor:
        """The decoder's output as images in [0, 1] (the Bernoulli mean, or the Gaussian's)."""
        return decoded.sigmoid() if self.cfg.decoder == "bernoulli" else decoded.clamp(0, 1)

    def terms(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, kl, mu) per sample, in nats, for float images in [0, 1]."""
        mu, logvar = self.posterior(images)
        z = reparameterise(mu, logvar, generator)
        reconstruction, kl = vae_terms(
            self.decode(z), images, mu, logvar, self.cfg.decoder, self.cfg.sigma
        )
        return reconstruction, kl, mu

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        reconstruction, kl, mu = self.terms(views[0])
        self.watch(torch.nn.functional.normalize(mu, dim=1))
        loss = (reconstruction + self.cfg.beta * kl).mean()
        logs = {"reconstruction": reconstruction.mean().detach(), "kl": kl.mean().detach()}
        return loss, logs | {"neg_elbo": (reconstruction + kl).mean().detach()}

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per held-out image, in nats: the negative ELBO (a bound on -log p(x)), its
        reconstruction term and its KL, with one posterior sample drawn from a fixed seed."""
        images = batch["image"].float() / 255
        generator = torch.Generator(device=images.device).manual_seed(0)
        reconstruction, kl, _ = self.terms(images, generator)
        return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

    def figures(self, batch: Batch) -> dict[str, Any]:
        size = self.decoder.height, self.decoder.width
        if tuple(batch["image"].shape[-2:]) != size:
            return {}
        images = batch["image"].float() / 255
        mu, logvar = self.posterior(images)
        scale = max(1, 64 // max(size))
        recon = self.pixels(self.decode(mu))
        pictures = {
            "vae: input | reconstruction from mu": reconstruction_grid(
                [to_uint8(images), to_uint8(recon)], scale=scale
            )
        }
        pictures["vae: latent traversals (rows: latents by KL, high first)"] = self.traversals(
            mu, logvar, scale
        )
        return pictures

    def traversals(self, mu: torch.Tensor, logvar: torch.Tensor, scale: int) -> np.ndarray:
        """A row per latent (ordered by its mean KL over the batch, highest first): the first
        sample's mean with that latent set to `traversal_steps` values over
        [-traversal_range, traversal_range], decoded."""
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).mean(0)
        order = kl.argsort(descending=True)
        r, steps = self.cfg.traversal_range, self.cfg.traversal_steps
        values = torch.linspace(-r, r, steps, device=mu.device)
        columns = []
        for value in values:
            z = mu[:1].repeat(len(order), 1)
            z[torch.arange(len(order)), order] = value
            columns.append(to_uint8(self.pixels(self.decode(z))))
        return reconstruction_grid(columns, scale=scale)
