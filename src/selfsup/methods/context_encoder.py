"""Context encoder (Pathak, Krähenbühl, Donahue, Darrell & Efros, CVPR 2016, "Context
Encoders: Feature Learning by Inpainting"): paint back a region dropped from the image; the
encoder that reads the rest is the representation.

The encoder (the run's backbone, exported as usual) reads the image with a region filled with
the mean pixel (the encoder's normalisation mean: zero after normalising, the reference's
fill); a decoder (`models/context_encoder.py`) paints the whole image back from the pooled
feature, and the loss weighs the painted region only:

- `mask=center` (the paper's): the central square of half the side; the input loses the square
  less a border `overlap` pixels wide, and the prediction of that visible border is weighted
  10 times (`selfsup.losses.central_weights`).
- `mask=random_block`: `blocks` squares of `block_fraction` of the side at random places (the
  paper's random-block masks), the dropped pixels weighted 1.

The reconstruction loss is the weighted L2 (`selfsup.losses.weighted_region_mse`); with
`adversarial=true` (the paper's joint loss) a discriminator tells the real images from the
images with the painted region pasted in, and the encoder-decoder minimises lambda_rec * L2 +
lambda_adv * L_adv (0.999 and 0.001). Two optimisers: each training step the discriminator
steps first, then the encoder-decoder ("generator") on the updated discriminator.

Settings checked against pathak22/context-encoder `train.lua` (the original) and
BoyuanJiang/context_encoder_pytorch `train.py`: Adam lr 2e-4 with beta1 0.5, batch 64, constant
lr (train.lua gives the encoder-decoder 10 times the discriminator's lr under the joint loss; the
PyTorch port and we the same lr: `generator_lr_scale`), non-saturating (BCE) adversarial loss,
fill with the mean pixel, overlap weight 10 (4 px at 128 px there, 7 px at 227 px in the
paper). Differences
(docs/methods-pretext.md): the decoder paints from the encoder's pooled feature (no channel-wise
fully connected layer); the discriminator sees the whole image with the region pasted in, not
the central patch alone (one discriminator for both masks); the PyTorch port multiplies its L2
by its weight twice, train.lua and we once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError
from selfsup.losses import (
    central_weights,
    discriminator_accuracy,
    discriminator_loss,
    generator_loss,
    joint_inpainting_loss,
    weighted_region_mse,
)
from selfsup.losses.inpainting import OVERLAP_WEIGHT
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.context_encoder import (
    InpaintingDecoder,
    InpaintingDiscriminator,
    block_masks,
)
from selfsup.models.decoders import reconstruction_grid, to_uint8

MASKS = ("center", "random_block")
DISCRIMINATOR, GENERATOR = "discriminator", "generator"


@dataclass
class ContextEncoderConfig:
    mask: str = "center"  # center (the paper's central square) | random_block
    # px of the central square's border left visible and weighted 10x; -1: the papers' share of
    # the side, side / 32 rounded (7 px at 227, 4 at 128, 1 at 32, 0 at 8)
    overlap: int = -1
    overlap_weight: float = OVERLAP_WEIGHT  # the paper's 10
    blocks: int = 4  # random_block: squares per image
    block_fraction: float = 0.25  # random_block: each square's side over the image's
    adversarial: bool = True  # the paper's joint loss; false: the L2 loss alone
    lambda_rec: float = 0.999
    lambda_adv: float = 0.001
    # the encoder-decoder's lr over the discriminator's under the joint loss (train.lua: 10;
    # 1 here: 10 took the digits encoder below random, docs/methods-pretext.md)
    generator_lr_scale: float = 1.0
    decoder_width: int = 128  # channels of the decoder's first grid
    discriminator_width: int = 64  # channels of the discriminator's first layer
    samples: int = 8  # rows of the report's picture
    mask_seed: int = 0  # the held-out figures' fixed random-block masks

    def __post_init__(self) -> None:
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {', '.join(MASKS)}, got {self.mask!r}")
        if self.overlap < -1 or not self.overlap_weight > 0:
            raise ValueError("overlap must be >= 0 (or -1: side / 32) and overlap_weight > 0")
        if self.blocks < 1 or not 0 < self.block_fraction <= 1:
            raise ValueError("blocks must be >= 1 and block_fraction in (0, 1]")
        if self.lambda_rec < 0 or self.lambda_adv < 0 or not self.generator_lr_scale > 0:
            raise ValueError("lambda_rec and lambda_adv must be >= 0, generator_lr_scale > 0")
        if self.decoder_width < 1 or self.discriminator_width < 1 or self.samples < 1:
            raise ValueError("decoder_width, discriminator_width and samples must be positive")


@register
class ContextEncoder(Method):
    """Encoder + decoder paint the dropped region (weighted L2 [+ adversarial]); D judges."""

    name = "context_encoder"
    family = "pretext"
    paper = "Pathak et al. 2016, context encoders"
    summary = "paint back a dropped central square (or random blocks) of the image"
    Config = ContextEncoderConfig
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "light"
    num_views = 1
    updates: ClassVar[tuple[str, ...]] = (DISCRIMINATOR, GENERATOR)
    find_unused_parameters = True  # each update's loss leaves the other network without gradients
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 8e-4,  # Adam 2e-4 at batch 64 (the reference), per 256 samples
        "weight_decay": 0.0,
        "betas": (0.5, 0.999),
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = (
        "the context encoder's reference code (Adam 2e-4 at batch 64, betas 0.5 / 0.999, "
        "constant lr; BoyuanJiang/context_encoder_pytorch, pathak22/context-encoder)"
    )
    exported_as = "encoder of the masked image (pooled features; evaluated on whole images)"

    def __init__(self, spec: Any, cfg: ContextEncoderConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        h, w = augment.view_size(0) if augment is not None else spec.height_width
        self.size = (h, w)
        if cfg.mask == "center":
            try:
                overlap = cfg.overlap if cfg.overlap >= 0 else round(min(h, w) / 32)
                weights, hole = central_weights(h, w, overlap, cfg.overlap_weight)
            except ValueError as err:
                raise SelfsupError(
                    f"method context_encoder drops the central square: {err}; use larger images "
                    f"(--image-size) or a smaller method.overlap"
                ) from None
            self.register_buffer("center_weights", weights[None, None], persistent=False)
            self.register_buffer("center_hole", hole[None, None], persistent=False)
        elif min(h, w) < 2:
            raise SelfsupError(
                f"method context_encoder's random blocks need images of at least 2x2 pixels; "
                f"these are {h}x{w}: use larger images (--image-size)"
            )
        channels = spec.in_channels
        self.decoder = InpaintingDecoder(self.encoder.out_dim, channels, h, w, cfg.decoder_width)
        self.discriminator = InpaintingDiscriminator(channels, h, w, cfg.discriminator_width)

    def masks(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hole, weights), each (B, 1, H, W): what the input loses, the loss's pixel weights;
        random blocks drawn from `generator` (default: the host's)."""
        b = images.shape[0]
        if images.shape[-2:] != self.size:
            raise SelfsupError(
                f"method context_encoder was built for {self.size[0]}x{self.size[1]} views; "
                f"got {tuple(images.shape[-2:])}"
            )
        if self.cfg.mask == "center":
            return self.center_hole.expand(b, -1, -1, -1), self.center_weights.expand(b, -1, -1, -1)
        side = max(1, round(min(self.size) * self.cfg.block_fraction))
        hole = block_masks(b, *self.size, self.cfg.blocks, side, images.device, generator)
        return hole, hole

    def views(self, batch: Batch) -> list[torch.Tensor]:
        x = self.augment(batch["image"], view=0)
        return [x, *self.masks(x)]

    def masked(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] with the hole filled with the mean pixel."""
        return images * (1 - hole) + self.encoder.mean * hole

    def inpaint(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The decoder's painting in [0, 1] (B, C, H, W) of the whole image, from the encoder's
        feature of the masked image."""
        features = self.encoder(self.masked(images, hole))
        self.watch(F.normalize(features, dim=1))
        return self.decoder(features)

    def judge(self, images: torch.Tensor) -> torch.Tensor:
        """Discriminator scores (B,) of images in [0, 1], normalised as the encoder does."""
        return self.discriminator(self.encoder.normalise(images))

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        if update == DISCRIMINATOR:
            return [{"params": list(self.discriminator.parameters())}]
        networks = [*self.encoder.parameters(), *self.decoder.parameters()]
        scale = self.cfg.generator_lr_scale if self.cfg.adversarial else 1.0
        return [{"params": networks, "lr_scale": scale}]

    def plan(self, progress: float) -> tuple[str, ...]:
        return self.updates if self.cfg.adversarial else (GENERATOR,)

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, hole, weights = views
        region = (weights > 0).to(images.dtype)
        if update == DISCRIMINATOR:
            with torch.no_grad():
                fake = images * (1 - region) + self.inpaint(images, hole) * region
            d_real, d_fake = self.judge(images), self.judge(fake)
            figures = {"d_accuracy": discriminator_accuracy(d_real.detach(), d_fake.detach())}
            return discriminator_loss(d_real, d_fake), figures
        if update != GENERATOR:
            raise SelfsupError(
                f"method context_encoder has the updates {', '.join(self.updates)}, not {update!r}"
            )
        painted = self.inpaint(images, hole)
        rec = weighted_region_mse(painted, images, weights)
        if not self.cfg.adversarial:
            return rec, {"reconstruction": rec.detach()}
        adv = generator_loss(self.judge(images * (1 - region) + painted * region))
        loss = joint_inpainting_loss(rec, adv, self.cfg.lambda_rec, self.cfg.lambda_adv)
        return loss, {"reconstruction": rec.detach(), "adversarial": adv.detach()}

    def heldout_masks(self, images: torch.Tensor) -> torch.Tensor:
        """The hole of held-out images: the central one, or random blocks from a fixed seed
        (a generator of its own: the run's random state is left alone)."""
        generator = torch.Generator().manual_seed(self.cfg.mask_seed)
        return self.masks(images, generator)[0]

    def heldout_images(self, images: torch.Tensor) -> torch.Tensor:
        """Held-out uint8 images in [0, 1] at the training views' size (resized if the run's
        augmentation makes views of another size than the data's)."""
        x = images.float() / 255
        if x.shape[-2:] != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x.clamp(0, 1)

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per held-out image: the inpainting's squared error over the hole (pixels in [0, 1],
        mean over the hole's pixels and channels) and the same error of filling it with the mean
        pixel (the baseline an inpainting must beat)."""
        images = self.heldout_images(batch["image"])
        hole = self.heldout_masks(images)
        painted = self.inpaint(images, hole)
        count = (hole.flatten(1).sum(1) * images.shape[1]).clamp(min=1)

        def error(pred: torch.Tensor) -> torch.Tensor:
            return ((pred - images).pow(2) * hole).flatten(1).sum(1) / count

        return {
            "inpainting_mse": error(painted),
            "mean_fill_mse": error(self.encoder.mean.expand_as(images)),
        }

    def figures(self, batch: Batch) -> dict[str, Any]:
        images = self.heldout_images(batch["image"][: self.cfg.samples])
        hole = self.heldout_masks(images)
        painted = images * (1 - hole) + self.inpaint(images, hole) * hole
        columns = [to_uint8(self.masked(images, hole)), to_uint8(painted), to_uint8(images)]
        scale = max(1, 64 // max(images.shape[-2:]))
        title = f"{self.name}: masked input | inpainting | original"
        return {title: reconstruction_grid(columns, scale=scale)}
