"""RBM: a Bernoulli-Bernoulli restricted Boltzmann machine over the binarised pixels, trained by
contrastive divergence (CD-k, Hinton 2002) or persistent CD (PCD, Tieleman 2008).

Each step takes the batch's binary images v (pixel above half its range) as the positive phase
and k rounds of block Gibbs sampling as the negative phase: from p(h|v) of the batch (CD-k) or
from persistent chains kept between steps (PCD, a buffer, so a resumed run continues the same
chains). The loss is `losses.cd_surrogate`, mean F(v_data) - mean F(v_model), whose gradient is
the CD gradient; plain SGD on it is scikit-learn's `BernoulliRBM._fit` update (hidden
probabilities in both phases). The encoder (kind "rbm") is exported; its representation is
p(h = 1 | v). Held-out figure: the exact pseudo-log-likelihood, as `pseudo_nll_nats` (nats per
image, over every pixel; scikit-learn's `score_samples` estimates the same sum from one flipped
pixel per image).

Defaults are scikit-learn's BernoulliRBM (sklearn/neural_network/_rbm.py): 256 hidden units,
PCD with one Gibbs step, learning rate 0.1 at batch 10 (the library scales it linearly with the
batch: 2.56 per 256 samples), weights N(0, 0.01^2), no momentum or weight decay, constant rate.
Its batch (10) and epochs (10) are the run's `--batch-size 10 --epochs 10`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.losses import cd_surrogate
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.binary import check_grey, tile
from selfsup.models.rbm import RBMEncoder, RBMEncoderSpec

FIGURE_CHAINS = 32  # Gibbs chains drawn for the report's samples
FIGURE_STEPS = 1000  # Gibbs rounds from noise before a sample is shown


@dataclass
class RBMConfig:
    hidden: int = 256  # hidden units (scikit-learn's n_components)
    k: int = 1  # Gibbs rounds per negative phase (CD-k / PCD-k)
    persistent: bool = True  # PCD (scikit-learn's SML) instead of CD started at the data
    chains: int = 100  # persistent chains (scikit-learn keeps batch_size of them)

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.k < 1 or self.chains < 1:
            raise ValueError("hidden, k and chains must be positive")


@register
class RBM(Method):
    """Binary pixels v, hidden units h; loss mean F(v_data) - mean F(v_gibbs) (the CD gradient)."""

    name = "rbm"
    family = "generative"
    paper = "Hinton 2002 (CD), Tieleman 2008 (PCD); restricted Boltzmann machine"
    summary = "an energy model of the binary pixels; p(h|v) is the representation"
    Config = RBMConfig
    # scikit-learn's BernoulliRBM: learning_rate 0.1 on the batch mean at batch_size 10, plain
    # SGD, constant
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.1 * 256 / 10,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = "scikit-learn's BernoulliRBM (SGD 0.1 at batch 10, constant)"
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "none"
    views_note = (
        "no augmentation: the binarised image (pixel above half its range); negative samples by "
        "{cfg.k} Gibbs round(s) per step"
    )
    num_views = 1
    unsynced_buffers: ClassVar[tuple[str, ...]] = ("chains",)  # each process its own chains
    exported_as = "the RBM's hidden probabilities p(h = 1 | v)"

    def __init__(self, spec: Any, cfg: RBMConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        check_grey(self.name, spec.in_channels)
        # The image encoder the base class built is replaced by the RBM.
        self.encoder = RBMEncoder(RBMEncoderSpec(spec.height_width, cfg.hidden))
        # sklearn starts its chains' hidden states at zero
        self.register_buffer("chains", torch.zeros(cfg.chains, cfg.hidden))

    def views(self, batch: Batch) -> list[Any]:
        return [batch["image"]]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rbm = self.encoder
        v = rbm.visible(views[0])
        with torch.autocast(v.device.type, enabled=False):  # free energies need fp32
            with torch.no_grad():
                if self.cfg.persistent:
                    start = self.chains
                else:
                    start = torch.bernoulli(rbm.hidden_probs(v))
                v_model, h_model = rbm.gibbs(start, self.cfg.k)
                if self.cfg.persistent:
                    self.chains.copy_(h_model)
            loss = cd_surrogate(v, v_model, rbm.weight, rbm.visible_bias, rbm.hidden_bias)
            with torch.no_grad():
                error = (rbm.visible_probs(rbm.hidden_probs(v)) - v).pow(2).sum(1).mean()
        return loss, {"reconstruction_error": error}

    def figures(self, batch: Batch) -> dict[str, Any]:
        rbm = self.encoder
        h, w = rbm.spec.image_size
        g = torch.Generator(device=rbm.weight.device).manual_seed(0)  # leaves the run's RNG
        hidden = torch.bernoulli(
            torch.full((FIGURE_CHAINS, rbm.spec.hidden), 0.5, device=rbm.weight.device),
            generator=g,
        )
        for _ in range(FIGURE_STEPS):
            v = torch.bernoulli(rbm.visible_probs(hidden), generator=g)
            hidden = torch.bernoulli(rbm.hidden_probs(v), generator=g)
        means = rbm.visible_probs(hidden).view(-1, h, w)
        filters = rbm.weight[:64].view(-1, h, w)
        low = filters.amin((1, 2), keepdim=True)
        filters = (filters - low) / (filters.amax((1, 2), keepdim=True) - low).clamp_min(1e-12)
        scale = max(1, 32 // max(h, w))
        return {
            f"rbm: samples (p(v|h) after {FIGURE_STEPS} Gibbs rounds from noise)": tile(
                means, scale=scale
            ),
            "rbm: filters (weights of the first 64 hidden units)": tile(filters, scale=scale),
        }
