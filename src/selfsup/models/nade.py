"""The NADE encoder kind: the neural autoregressive distribution estimator (Larochelle & Murray
2011) over the binarised pixels of grey images, in raster order.

It holds the whole density (W, c, V, b), so the exact log-likelihood and samples come from the
exported encoder alone. The representation is the hidden layer after seeing every pixel,
h = sigmoid(c + W v): the hidden units the conditional of a pixel after the last would read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.losses.density import nade_logits, nade_nll
from selfsup.models.binary import GreyImageSpec, binarise, preprocess_grey

FIGURE_ROWS = 64  # images per chunk of the held-out figures: (rows, D, hidden) floats at once


@dataclass(frozen=True)
class NADEEncoderSpec(GreyImageSpec):
    """Image size (H, W) of the grey images it models and the number of hidden units."""

    kind: ClassVar[str] = "nade"

    image_size: tuple[int, int]
    hidden: int

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise SelfsupError(f"NADE needs at least one hidden unit, got {self.hidden}")

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": list(self.image_size), "hidden": self.hidden}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NADEEncoderSpec:
        h, w = d["image_size"]
        return cls((int(h), int(w)), int(d["hidden"]))


class NADEEncoder(nn.Module):
    """Grey images (B, 1, H, W), uint8 or float in [0, 1], binarised (pixel above half its
    range) -> h = sigmoid(c + W v), (B, hidden). W (H, D) and V (D, H) start N(0, 0.01^2),
    the biases zero."""

    kind: ClassVar[str] = "nade"

    def __init__(self, spec: NADEEncoderSpec):
        super().__init__()
        self.spec = spec
        self.out_dim: int = spec.hidden
        self.weight = nn.Parameter(torch.randn(spec.hidden, spec.visible) * 0.01)
        self.hidden_bias = nn.Parameter(torch.zeros(spec.hidden))
        self.out_weight = nn.Parameter(torch.randn(spec.visible, spec.hidden) * 0.01)
        self.out_bias = nn.Parameter(torch.zeros(spec.visible))

    def visible(self, images: torch.Tensor) -> torch.Tensor:
        """The binary visible vectors (B, D) of images."""
        return binarise(images)

    def nll(self, v: torch.Tensor) -> torch.Tensor:
        """-log p(v) per row (B,) in nats."""
        return nade_nll(v, self.weight, self.hidden_bias, self.out_weight, self.out_bias)

    def logits(self, v: torch.Tensor) -> torch.Tensor:
        """Logits of p(v_d = 1 | v_<d), (B, D)."""
        return nade_logits(v, self.weight, self.hidden_bias, self.out_weight, self.out_bias)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` binary images (n, D) drawn pixel by pixel, each pixel from p(v_d | v_<d): the
        loop runs over the D pixels, every sample at once."""
        device = self.weight.device
        v = torch.zeros(n, self.spec.visible, device=device)
        pre = self.hidden_bias.expand(n, -1).clone()
        for d in range(self.spec.visible):
            p = torch.sigmoid(torch.sigmoid(pre) @ self.out_weight[d] + self.out_bias[d])
            u = torch.rand(n, device=device, generator=generator)
            v[:, d] = (u < p).float()
            pre = pre + v[:, d, None] * self.weight[:, d]
        return v

    def heldout_figures(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """-log p(v) of each image (B,), in nats (the evaluation's `nll_nats`, see
        `evaluate.suite.model_figures`)."""
        v = self.visible(x)
        return {"nll_nats": torch.cat([self.nll(part) for part in v.split(FIGURE_ROWS)])}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.visible(x) @ self.weight.t() + self.hidden_bias)

    def preprocess(self, raw: Any) -> torch.Tensor:
        """uint8 grey images (N, 1, H, W) at the training size from what a user holds."""
        return preprocess_grey(raw, self.spec.image_size)

    def extra_repr(self) -> str:
        return f"visible={self.spec.visible}, hidden={self.spec.hidden}"
