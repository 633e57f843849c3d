"""CycleGAN (Zhu et al. 2017): unpaired translation between two image domains A and B.

Two generators (A -> B and B -> A, ResNet generators) and two PatchGAN discriminators (one per
domain) are trained with the least-squares adversarial loss, cycle consistency (lambda_cycle
10) and identity (lambda_identity 0.5, times lambda_cycle); the discriminators see generated
images through a pool of 50 earlier ones. The generators step first, then the discriminators,
on the generated images of the generators' step (detached), as the reference's
`optimize_parameters`. Checked against junyanz/pytorch-CycleGAN-and-pix2pix
(models/cycle_gan_model.py, models/networks.py, util/image_pool.py); where ours differs
(batches instead of one image, fewer blocks for small images, the lr schedule) is in
docs/methods-generative.md.

Domain A is the run's `--data`, domain B `--data-b`: the batch carries B's images as the field
"image_b", unaligned with A's. Exported: the A -> B generator's front (its convolutions up to
the last residual block), globally average-pooled, as the representation of A's images.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from selfsup.errors import SelfsupError
from selfsup.losses import (
    cycle_loss,
    discriminator_loss,
    generator_loss,
    identity_loss,
    per_sample_l1,
)
from selfsup.losses.adversarial import GAN_LOSSES
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.cyclegan import (
    CycleGANEncoder,
    CycleGANEncoderSpec,
    Generator,
    exchange_with_pool,
    generator_back,
    generator_front,
    init_normal,
    patch_discriminator,
    sizes_for,
    to_signed,
)
from selfsup.models.decoders import reconstruction_grid, to_uint8


@dataclass
class CycleGANConfig:
    lambda_cycle: float = 10.0  # weight of the cycle-consistency L1 terms
    lambda_identity: float = 0.5  # identity terms' weight, times lambda_cycle (0: none)
    gan_loss: str = "least_squares"  # LSGAN, as the reference; or non_saturating, hinge
    pool_size: int = 50  # generated images kept for the discriminators (0: none)
    width: int = 32  # the generators' first width (reference: 64)
    disc_width: int = 32  # the discriminators' first width (reference: 64)
    down: int = 0  # stride-2 convolutions in a generator; 0: by image size (sizes_for)
    blocks: int = 0  # residual blocks; 0: by image size (3 up to 32 px, 6 to 128 px, else 9)
    disc_layers: int = 0  # the PatchGAN's stride-2 layers; 0: by image size (1, 2 or 3)

    def __post_init__(self) -> None:
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}")
        if self.pool_size < 0 or self.width < 1 or self.disc_width < 1:
            raise ValueError("pool_size must be >= 0, width and disc_width >= 1")


@register
class CycleGAN(Method):
    name = "cyclegan"
    family = "generative"
    paper = "Zhu et al. 2017, Unpaired Image-to-Image Translation (CycleGAN)"
    summary = "two generators translate A <-> B against a discriminator each, held by cycles"
    Config = CycleGANConfig
    inputs = frozenset({"image", "image_b"})
    modalities = frozenset({"image"})
    augment_family = "none"
    views_note = (
        "none: the images of A and of B as they are, in [-1, 1] (the reference's resize, "
        "random crop and flip are left out at small sizes)"
    )
    updates: ClassVar[tuple[str, ...]] = ("generators", "discriminators")
    find_unused_parameters = True  # the discriminators' step leaves the generators without
    # Adam(0.5, 0.999) at 2e-4 per step at batch 1 in the reference; our lr is per 256 samples,
    # scaled by batch/256: 8e-4 gives 2e-4 at batch 64. Constant then linear decay to 0 in the
    # reference; here cosine to 0 without warm-up.
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 8e-4,
        "betas": (0.5, 0.999),
        "weight_decay": 0.0,
        "warmup": 0.0,
        "final_lr_fraction": 0.0,
    }
    optimiser_reference = "junyanz/pytorch-CycleGAN-and-pix2pix (Adam 2e-4, betas 0.5, 0.999)"
    exported_as = "the A -> B generator's encoder (up to its last residual block), average-pooled"

    def __init__(self, spec: Any, cfg: CycleGANConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        h, w = spec.height_width
        down, blocks, layers = sizes_for(min(h, w))
        down, blocks = cfg.down or down, cfg.blocks or blocks
        layers = cfg.disc_layers or layers
        if min(h, w) % 2**down or min(h, w) // 2**down < 2:
            raise SelfsupError(
                f"cyclegan: images of {h}x{w} px cannot be halved {down} times (method.down); "
                "use --image-size with a multiple of 4, or set method.down"
            )
        c = spec.in_channels
        base = {f.name: getattr(spec, f.name) for f in fields(spec)}
        gspec = CycleGANEncoderSpec(**base | {"width": cfg.width, "down": down, "blocks": blocks})
        self.encoder = CycleGANEncoder(gspec)  # the A -> B generator's front: exported
        self.back_ab = generator_back(c, cfg.width, down)
        self.g_ba = Generator(
            generator_front(c, cfg.width, down, blocks), generator_back(c, cfg.width, down)
        )
        init_normal(self.back_ab)
        init_normal(self.g_ba)
        self.d_a = patch_discriminator(c, cfg.disc_width, layers)  # real A vs F(b)
        self.d_b = patch_discriminator(c, cfg.disc_width, layers)  # real B vs G(a)
        self.register_buffer("pool_a", torch.zeros(cfg.pool_size, c, h, w))
        self.register_buffer("pool_b", torch.zeros(cfg.pool_size, c, h, w))
        self.register_counter("pool_filled")
        self._fakes: tuple[torch.Tensor, torch.Tensor] | None = None

    def g_ab(self, a: torch.Tensor) -> torch.Tensor:
        """A in [-1, 1] -> B in [-1, 1]."""
        return self.back_ab(self.encoder.feature_map(a))

    def views(self, batch: Batch) -> list[torch.Tensor]:
        return [to_signed(batch["image"]), to_signed(batch["image_b"])]

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        if update == "generators":
            nets = (self.encoder, self.back_ab, self.g_ba)
        else:
            nets = (self.d_a, self.d_b)
        return [{"params": [p for n in nets for p in n.parameters()]}]

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if update == "generators":
            return self.generators_loss(*views)
        return self.discriminators_loss(*views)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Both updates' losses summed (for a caller that steps one optimiser over all)."""
        g, figures = self.generators_loss(*views)
        d, more = self.discriminators_loss(*views)
        return g + d, figures | more

    def generators_loss(
        self, a: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Adversarial (each generator fools the other domain's discriminator) + lambda_cycle *
        cycle + lambda_cycle * lambda_identity * identity."""
        cfg = self.cfg
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        adversarial = generator_loss(self.d_b(fake_b).float(), cfg.gan_loss) + generator_loss(
            self.d_a(fake_a).float(), cfg.gan_loss
        )
        cycle = cycle_loss(self.g_ba(fake_b).float(), a) + cycle_loss(self.g_ab(fake_a).float(), b)
        loss = adversarial + cfg.lambda_cycle * cycle
        figures = {"adversarial_g": adversarial.detach(), "cycle_l1": cycle.detach()}
        if cfg.lambda_identity > 0:
            same = identity_loss(self.g_ab(b).float(), b) + identity_loss(self.g_ba(a).float(), a)
            loss = loss + cfg.lambda_cycle * cfg.lambda_identity * same
            figures["identity_l1"] = same.detach()
        self._fakes = (fake_a.detach(), fake_b.detach())
        return loss, figures

    def discriminators_loss(
        self, a: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Each discriminator's loss on its domain's real images against generated ones drawn
        through the pool, halved (the reference slows the discriminators so)."""
        if self._fakes is None:  # no generators' step before this one: translate now
            with torch.no_grad():
                self._fakes = (self.g_ba(b), self.g_ab(a))
        fake_a, fake_b = self._fakes
        self._fakes = None
        filled = int(self.counter("pool_filled"))
        fake_a, _ = exchange_with_pool(self.pool_a, filled, fake_a)
        fake_b, filled = exchange_with_pool(self.pool_b, filled, fake_b)
        self.set_counter("pool_filled", filled)
        kind = self.cfg.gan_loss
        d_a = discriminator_loss(self.d_a(a).float(), self.d_a(fake_a).float(), kind)
        d_b = discriminator_loss(self.d_b(b).float(), self.d_b(fake_b).float(), kind)
        return 0.5 * (d_a + d_b), {"d_a": d_a.detach(), "d_b": d_b.detach()}

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The cycle error of each held-out image, A -> B -> A and B -> A -> B: mean absolute
        pixel error in [0, 1] units."""
        a, b = self.views(batch)
        return {
            "cycle_error_aba": per_sample_l1(self.g_ba(self.g_ab(a)).float(), a) / 2,
            "cycle_error_bab": per_sample_l1(self.g_ab(self.g_ba(b)).float(), b) / 2,
        }

    def figures(self, batch: Batch) -> dict[str, Any]:
        a, b = self.views(batch)
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        rec_a, rec_b = self.g_ba(fake_b), self.g_ab(fake_a)
        scale = max(1, 64 // max(a.shape[-2:]))

        def grid(*columns: torch.Tensor) -> Any:
            return reconstruction_grid([to_uint8((c.float() + 1) / 2) for c in columns], scale)

        return {
            "cyclegan: A | A->B | A->B->A": grid(a, fake_b, rec_a),
            "cyclegan: B | B->A | B->A->B": grid(b, fake_a, rec_b),
        }
