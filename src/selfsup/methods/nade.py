"""NADE: the neural autoregressive distribution estimator (Larochelle & Murray, AISTATS 2011)
over the binarised pixels in raster order.

p(v) = prod_d p(v_d | v_<d), each conditional a sigmoid of one hidden layer
h_d = sigmoid(c + W[:, <d] v_<d) that all conditionals share through W: the pre-activations
are one cumulative sum over the pixels, O(HD) per image (`losses.nade_nll`). The loss is the
exact negative log-likelihood in nats per image, averaged over the batch. The encoder (kind
"nade") is exported with the whole density; its representation is the hidden layer after every
pixel, sigmoid(c + W v). Held-out figure: `nll_nats`, -log p(v) per image (the paper: 88.86
nats on binarised MNIST with 500 hidden units).

Defaults: the paper's 500 hidden units and plain SGD at a constant rate (its rates were chosen
on validation data; we take 0.005 per image, per-sample updates scaled by the library's linear
rule: 1.28 per 256 samples on the batch mean), no weight decay. The paper trained one image at a
time with early stopping; here the run's batch and epochs decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.binary import check_grey, tile
from selfsup.models.nade import NADEEncoder, NADEEncoderSpec

FIGURE_SAMPLES = 32  # images drawn pixel by pixel for the report


@dataclass
class NADEConfig:
    hidden: int = 500  # hidden units (the paper's)

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ValueError("hidden must be positive")


@register
class NADE(Method):
    """Binary pixels v in raster order; loss -log p(v) = sum_d BCE(p(v_d | v_<d), v_d)."""

    name = "nade"
    family = "generative"
    paper = "Larochelle & Murray 2011, NADE"
    summary = "each pixel predicted from the pixels before it; exact likelihood"
    Config = NADEConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.005 * 256,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = "the paper's plain SGD (0.005 per image, constant)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    views_note = "no augmentation: the binarised image (pixel above half its range)"
    num_views = 1
    exported_as = "NADE's hidden layer after every pixel, sigmoid(c + W v)"

    def __init__(self, spec: Any, cfg: NADEConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        check_grey(self.name, spec.in_channels)
        # The image encoder the base class built is replaced by NADE.
        self.encoder = NADEEncoder(NADEEncoderSpec(spec.height_width, cfg.hidden))

    def views(self, batch: Batch) -> list[Any]:
        return [batch["image"]]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        v = self.encoder.visible(views[0])
        with torch.autocast(v.device.type, enabled=False):  # log-likelihoods in fp32
            return self.encoder.nll(v).mean(), {}

    def figures(self, batch: Batch) -> dict[str, Any]:
        nade = self.encoder
        h, w = nade.spec.image_size
        g = torch.Generator(device=nade.weight.device).manual_seed(0)  # leaves the run's RNG
        samples = nade.sample(FIGURE_SAMPLES, generator=g).view(-1, h, w)
        v = nade.visible(batch["image"][:8])
        conditionals = torch.sigmoid(nade.logits(v))
        pairs = torch.stack([v, conditionals], 1).view(-1, h, w)  # input, then p(v_d | v_<d)
        scale = max(1, 32 // max(h, w))
        return {
            "nade: samples (drawn pixel by pixel)": tile(samples, scale=scale),
            "nade: held-out image | p(pixel on | the pixels before it)": tile(
                pairs, columns=8, scale=scale
            ),
        }
