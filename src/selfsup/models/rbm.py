"""The RBM encoder kind: a Bernoulli-Bernoulli restricted Boltzmann machine over the binarised
pixels of grey images, whose representation is the hidden units' probabilities p(h = 1 | v).

It holds the whole model (weights and both biases), so the free energy, Gibbs sampling and the
pseudo-likelihood are available from the exported encoder alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.losses.density import rbm_free_energy, rbm_pseudo_loglik
from selfsup.models.binary import GreyImageSpec, binarise, preprocess_grey

FIGURE_ROWS = 64  # images per chunk of the held-out figures: (rows, D, hidden) floats at once


@dataclass(frozen=True)
class RBMEncoderSpec(GreyImageSpec):
    """Image size (H, W) of the grey images it models and the number of hidden units."""

    kind: ClassVar[str] = "rbm"

    image_size: tuple[int, int]
    hidden: int

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise SelfsupError(f"an RBM needs at least one hidden unit, got {self.hidden}")

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": list(self.image_size), "hidden": self.hidden}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RBMEncoderSpec:
        h, w = d["image_size"]
        return cls((int(h), int(w)), int(d["hidden"]))


class RBMEncoder(nn.Module):
    """Grey images (B, 1, H, W), uint8 or float in [0, 1], binarised (pixel above half its
    range) -> p(h = 1 | v) = sigmoid(W v + c), (B, hidden). Weights start as scikit-learn's
    BernoulliRBM's: W ~ N(0, 0.01^2), both biases zero."""

    kind: ClassVar[str] = "rbm"

    def __init__(self, spec: RBMEncoderSpec):
        super().__init__()
        self.spec = spec
        self.out_dim: int = spec.hidden
        self.weight = nn.Parameter(torch.randn(spec.hidden, spec.visible) * 0.01)
        self.visible_bias = nn.Parameter(torch.zeros(spec.visible))
        self.hidden_bias = nn.Parameter(torch.zeros(spec.hidden))

    def visible(self, images: torch.Tensor) -> torch.Tensor:
        """The binary visible vectors (B, D) of images."""
        return binarise(images)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v), (B, hidden)."""
        return torch.sigmoid(v @ self.weight.t() + self.hidden_bias)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h), (B, D)."""
        return torch.sigmoid(h @ self.weight + self.visible_bias)

    def gibbs(self, h: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`steps` rounds of block Gibbs sampling from hidden states h: v ~ p(v|h), then
        h ~ p(h|v). Returns the last visible sample and the last hidden sample (the state a
        persistent chain keeps)."""
        v = h.new_zeros(len(h), self.spec.visible)
        for _ in range(steps):
            v = torch.bernoulli(self.visible_probs(h))
            h = torch.bernoulli(self.hidden_probs(v))
        return v, h

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per row (B,)."""
        return rbm_free_energy(v, self.weight, self.visible_bias, self.hidden_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_probs(self.visible(x))

    def heldout_figures(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Minus the exact pseudo-log-likelihood of each image (B,), in nats (the evaluation's
        `pseudo_nll_nats`, see `evaluate.suite.model_figures`)."""
        v = self.visible(x)
        parts = [
            -rbm_pseudo_loglik(part, self.weight, self.visible_bias, self.hidden_bias)
            for part in v.split(FIGURE_ROWS)
        ]
        return {"pseudo_nll_nats": torch.cat(parts)}

    def preprocess(self, raw: Any) -> torch.Tensor:
        """uint8 grey images (N, 1, H, W) at the training size from what a user holds."""
        return preprocess_grey(raw, self.spec.image_size)

    def extra_repr(self) -> str:
        return f"visible={self.spec.visible}, hidden={self.spec.hidden}"
