"""GAN features (DCGAN, Radford et al. 2016): a generator and a discriminator trained against
each other; the discriminator's convolutional features are the representation.

Networks and defaults as DCGAN's reference code (pytorch/examples dcgan/main.py,
Newmu/dcgan_code): `models/dcgan.py`'s generator and discriminator trunk, z of 100 standard
normal values, Adam lr 2e-4 with betas (0.5, 0.999), batch 128, no augmentation. The
discriminator IS the exported encoder: `self.encoder` with the `dcgan` backbone (its trunk), plus
one convolution over the trunk's last map that gives the score. Real and generated images reach
it the same way: the generator's tanh output in [-1, 1] is mapped to [0, 1] ((g + 1) / 2, the
range of the real images as the encoder takes them) and both go through the encoder's own
mean/std normalisation, so the discriminator cannot tell them apart by their scale.

Each training step: the discriminator steps on real images against G(z) (detached), then the
generator steps on the just-updated discriminator's scores of G(z), for the same z (the
reference's loop). `method.loss`: non_saturating (the paper's) or hinge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.errors import SelfsupError
from selfsup.losses.adversarial import (
    GAN_LOSSES,
    discriminator_accuracy,
    discriminator_loss,
    generator_loss,
)
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.dcgan import (
    DCGAN_OPTIMISER,
    DCGAN_OPTIMISER_REFERENCE,
    ConvScore,
    DCGANGenerator,
    DCGANTrunk,
    fixed_noise,
    sample_grid,
    trunk_map_size,
)


@dataclass
class GANConfig:
    z_dim: int = 100  # noise dimension (DCGAN: 100)
    loss: str = "non_saturating"  # non_saturating (DCGAN) | hinge | least_squares
    generator_width: int = 64  # channels of the generator's last hidden layer (ngf)
    samples: int = 64  # fixed-noise samples shown in the report (an 8x8 grid)
    seed: int = 0  # seed of the fixed noise

    def __post_init__(self) -> None:
        if self.loss not in GAN_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, got {self.loss!r}")
        if self.z_dim < 1 or self.generator_width < 1 or self.samples < 1:
            raise ValueError("z_dim, generator_width and samples must be positive")


@register
class GAN(Method):
    """D: the encoder's DCGAN trunk + a conv score; G: DCGAN's generator; two optimisers."""

    name = "gan"
    family = "generative"
    paper = "Radford et al. 2016, DCGAN"
    summary = "a discriminator that tells real images from a generator's; its features"
    Config = GANConfig
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    updates: ClassVar[tuple[str, ...]] = ("discriminator", "generator")
    find_unused_parameters = True  # each update's loss leaves the other network without gradients
    backbones: ClassVar[dict[str, str]] = {"image": "dcgan"}
    exported_as = "the discriminator's convolutional trunk (every layer max-pooled to 4x4)"
    optimiser: ClassVar[dict[str, Any]] = DCGAN_OPTIMISER
    optimiser_reference = DCGAN_OPTIMISER_REFERENCE

    def __init__(self, spec: Any, cfg: GANConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        if not isinstance(self.encoder.backbone, DCGANTrunk):
            raise SelfsupError(
                f"method 'gan' trains the discriminator it exports: it needs --backbone dcgan, "
                f"not {spec.backbone!r}"
            )
        h, w = augment.view_size(0) if augment is not None else spec.height_width
        self.score = ConvScore(self.encoder.backbone.widths[-1], *trunk_map_size(h, w))
        self.generator = DCGANGenerator(cfg.z_dim, spec.in_channels, h, w, cfg.generator_width)
        self.register_buffer("fixed_noise", fixed_noise(cfg.samples, cfg.z_dim, cfg.seed))

    def views(self, batch: Batch) -> list[torch.Tensor]:
        """The real images in [0, 1] and the step's noise (both updates see the same z)."""
        real = self.augment(batch["image"], view=0)
        return [real, torch.randn(len(real), self.cfg.z_dim, device=real.device)]

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Generated images in [0, 1], the real images' range."""
        return (self.generator(z) + 1) / 2

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of images in [0, 1], normalised as the encoder normalises."""
        maps = self.encoder.backbone.maps(self.encoder.normalise(images))
        return self.score(maps[-1])

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        if update == "discriminator":
            return [{"params": [*self.encoder.parameters(), *self.score.parameters()]}]
        return [{"params": list(self.generator.parameters())}]

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real, z = views
        kind = self.cfg.loss
        if update == "discriminator":
            with torch.no_grad():
                fake = self.generate(z)
            d_real, d_fake = self.discriminate(real), self.discriminate(fake)
            figures = {
                "d_accuracy": discriminator_accuracy(d_real.detach(), d_fake.detach()),
                "d_real": d_real.detach().mean(),
                "d_fake": d_fake.detach().mean(),
            }
            return discriminator_loss(d_real, d_fake, kind), figures
        d_fake = self.discriminate(self.generate(z))
        return generator_loss(d_fake, kind), {}

    def figures(self, batch: Batch) -> dict[str, Any]:
        samples = self.generate(self.fixed_noise)
        scale = max(1, 64 // max(samples.shape[-2:]))
        return {f"{self.name}: samples from fixed noise": sample_grid(samples, scale=scale)}
