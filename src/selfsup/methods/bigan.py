"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): an encoder E and a generator G
trained together against a joint discriminator D(x, z) of real pairs (x, E(x)) and generated
pairs (G(z), z); at the optimum E inverts G. E is exported.

After jeffdonahue/bigan and IshmaelBelghazi/ALI: E is the run's image encoder (`self.encoder`,
the `dcgan` trunk by default, any backbone works) with a linear map of its pooled features to
z; G is DCGAN's generator (`models/dcgan.py`); D takes x through its own DCGAN trunk and z
through an MLP and joins them (`JointDiscriminator`). z is standard normal (ALI; BiGAN drew it
uniform on [-1, 1]), of 100 values. Adam 2e-4, betas (0.5, 0.999) at batch 128, as DCGAN and
both papers. Images reach D as they reach E: in [0, 1] (G's tanh output mapped by
(g + 1) / 2), then the encoder's mean/std normalisation.

Each step: D steps on (x, E(x)) as real against (G(z), z) as generated, E and G detached; then
E and G step together on the labels swapped (BiGAN's "inverted" objective): the generator loss
of D(G(z), z) plus the generator loss of -D(x, E(x)), i.e. for the non-saturating loss
-log D(G(z), z) - log(1 - D(x, E(x))).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

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
    DCGANGenerator,
    JointDiscriminator,
    dcgan_init,
    fixed_noise,
    sample_grid,
)
from selfsup.models.decoders import reconstruction_grid, to_uint8


@dataclass
class BiGANConfig:
    z_dim: int = 100  # code dimension (BiGAN's ImageNet model: 200; DCGAN's noise: 100)
    loss: str = "non_saturating"  # non_saturating (BiGAN, ALI) | hinge | least_squares
    generator_width: int = 64  # channels of the generator's last hidden layer (ngf)
    discriminator_hidden: int = 512  # width of D's code MLP and joint MLP
    samples: int = 64  # fixed-noise samples shown in the report
    seed: int = 0  # seed of the fixed noise

    def __post_init__(self) -> None:
        if self.loss not in GAN_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, got {self.loss!r}")
        if min(self.z_dim, self.generator_width, self.discriminator_hidden, self.samples) < 1:
            raise ValueError(
                "z_dim, generator_width, discriminator_hidden and samples must be positive"
            )


@register
class BiGAN(Method):
    """E (exported) + linear to z, G, joint D(x, z); optimisers "discriminator" and
    "encoder_generator"."""

    name = "bigan"
    family = "generative"
    paper = "Donahue et al. 2017, BiGAN; Dumoulin et al. 2017, ALI"
    summary = "an encoder that inverts a generator, learned against a joint discriminator"
    Config = BiGANConfig
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    updates: ClassVar[tuple[str, ...]] = ("discriminator", "encoder_generator")
    find_unused_parameters = True
    backbones: ClassVar[dict[str, str]] = {"image": "dcgan"}
    exported_as = "the encoder E (its pooled features, before the linear map to z)"
    optimiser: ClassVar[dict[str, Any]] = DCGAN_OPTIMISER
    optimiser_reference = DCGAN_OPTIMISER_REFERENCE

    def __init__(self, spec: Any, cfg: BiGANConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        h, w = augment.view_size(0) if augment is not None else spec.height_width
        self.to_code = nn.Linear(self.encoder.out_dim, cfg.z_dim)
        self.generator = DCGANGenerator(cfg.z_dim, spec.in_channels, h, w, cfg.generator_width)
        self.discriminator = JointDiscriminator(
            spec.in_channels, h, w, cfg.z_dim, cfg.discriminator_hidden
        )
        dcgan_init(self.to_code)
        self.register_buffer("fixed_noise", fixed_noise(cfg.samples, cfg.z_dim, cfg.seed))

    def views(self, batch: Batch) -> list[torch.Tensor]:
        """The real images in [0, 1] and the step's noise (both updates see the same z)."""
        real = self.augment(batch["image"], view=0)
        return [real, torch.randn(len(real), self.cfg.z_dim, device=real.device)]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """E(x): codes (B, z_dim) of images in [0, 1]."""
        return self.to_code(self.encoder(images))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): images in [0, 1], the real images' range."""
        return (self.generator(z) + 1) / 2

    def discriminate(self, images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """D(x, z): scores (B,) of images in [0, 1] (normalised as the encoder does) with codes."""
        return self.discriminator(self.encoder.normalise(images), z)

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        if update == "discriminator":
            return [{"params": list(self.discriminator.parameters())}]
        nets = (self.encoder, self.to_code, self.generator)
        return [{"params": [p for net in nets for p in net.parameters()]}]

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real, z = views
        kind = self.cfg.loss
        if update == "discriminator":
            with torch.no_grad():
                code, fake = self.encode(real), self.generate(z)
            d_real, d_fake = self.discriminate(real, code), self.discriminate(fake, z)
            figures = {
                "d_accuracy": discriminator_accuracy(d_real.detach(), d_fake.detach()),
                "d_real": d_real.detach().mean(),
                "d_fake": d_fake.detach().mean(),
            }
            return discriminator_loss(d_real, d_fake, kind), figures
        d_real = self.discriminate(real, self.encode(real))
        d_fake = self.discriminate(self.generate(z), z)
        return generator_loss(d_fake, kind) + generator_loss(-d_real, kind), {}

    def figures(self, batch: Batch) -> dict[str, Any]:
        samples = self.generate(self.fixed_noise)
        scale = max(1, 64 // max(samples.shape[-2:]))
        real = self.augment(batch["image"], view=0)
        rebuilt = self.generate(self.encode(real))
        return {
            f"{self.name}: samples from fixed noise": sample_grid(samples, scale=scale),
            f"{self.name}: input | G(E(x))": reconstruction_grid(
                [to_uint8(real), to_uint8(rebuilt)], scale=scale
            ),
        }
