"""The Mahalanobis encoder kind: a linear map L on flattened, standardised images (or on the
features of a frozen encoder), so that ||L x - L y||^2 = (x - y)^T A (x - y) with A = L^T L
positive semi-definite: the learned metric is the Euclidean distance of the outputs.

A frozen encoder (`features`, a run directory) is kept inside, its weights saved with L's, so
the exported encoder is self-contained; its spec is stored too, which rebuilds it where the
run directory is gone (the weights then come from this encoder's own file).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class MahalanobisSpec:
    """The input (image size, channels, per-channel mean and std), L's rows, and the frozen
    encoder L reads instead of pixels (its run directory, kind and spec as JSON) if any."""

    kind: ClassVar[str] = "mahalanobis"

    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    out_dim: int
    features: str | None = None
    base_kind: str | None = None
    base_spec: str | None = None
    channel_groups: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.out_dim < 1:
            raise SelfsupError(f"the linear map needs at least one output, got {self.out_dim}")

    @property
    def height_width(self) -> tuple[int, int]:
        return self.image_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MahalanobisSpec:
        d = dict(d)
        d["image_size"] = tuple(int(v) for v in d["image_size"])
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        d["channel_groups"] = tuple((str(g), int(c)) for g, c in d.get("channel_groups", ()))
        return cls(**d)


def frozen_encoder(run: str) -> tuple[nn.Module, str, str]:
    """The exported encoder of the run directory `run`, frozen, with its kind and spec JSON."""
    from selfsup.export import load

    folder = Path(run).expanduser()
    if not folder.exists():
        raise SelfsupError(
            f"frozen-feature source {folder} does not exist; give method.features=RUN, the "
            "directory of a finished `selfsup pretrain` run (or leave it out: raw pixels)"
        )
    base = load(folder)
    if base.kind == MahalanobisSpec.kind:
        raise SelfsupError(f"{folder} holds a Mahalanobis map; give a run of a deep encoder")
    return base, base.kind, json.dumps(base.spec.to_dict())


class MahalanobisEncoder(nn.Module):
    """x -> L phi(x), phi the flattened standardised pixels or a frozen encoder's features.
    L starts random, N(0, 1/in_dim) (a random projection: the `random` baseline row); the
    method sets its own start (identity) after building it."""

    kind: ClassVar[str] = "mahalanobis"

    def __init__(self, spec: MahalanobisSpec):
        super().__init__()
        self.spec = spec
        self.base: nn.Module | None = None
        if spec.features is not None:
            if Path(spec.features).expanduser().exists() or spec.base_kind is None:
                self.base = frozen_encoder(spec.features)[0]
            else:  # the run moved: rebuild its network, its weights come with this encoder's
                from selfsup.models.registry import encoder_class, spec_class

                base_spec = spec_class(spec.base_kind).from_dict(json.loads(spec.base_spec or ""))
                self.base = encoder_class(spec.base_kind)(base_spec)
            self.base.requires_grad_(False)
            in_dim = self.base.out_dim
        else:
            h, w = spec.image_size
            in_dim = spec.in_channels * h * w
        self.in_dim: int = in_dim
        self.out_dim: int = spec.out_dim
        self.map = nn.Linear(in_dim, spec.out_dim, bias=False)
        nn.init.normal_(self.map.weight, std=1 / math.sqrt(in_dim))
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> MahalanobisEncoder:
        super().train(mode)
        if self.base is not None:
            self.base.eval()  # frozen: its BatchNorm statistics and dropout stay as trained
        return self

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): (B, in_dim), what L multiplies."""
        if self.base is not None:
            with torch.no_grad():
                return self.base(x).float()
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return ((x - self.mean) / self.std).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.map(self.inputs(x))

    def metric(self) -> torch.Tensor:
        """A = L^T L (in_dim, in_dim), positive semi-definite."""
        return self.map.weight.T @ self.map.weight

    def preprocess(self, raw: Any) -> torch.Tensor:
        if self.base is not None:
            return self.base.preprocess(raw)
        from selfsup.models.encoder import ImageEncoderSpec, preprocess_images

        image = ImageEncoderSpec(
            "convnet",
            self.spec.in_channels,
            self.spec.image_size,
            True,
            self.spec.mean,
            self.spec.std,
        )
        return preprocess_images(raw, image)

    def extra_repr(self) -> str:
        source = f"features of {self.spec.features}" if self.spec.features else "pixels"
        return f"in_dim={self.in_dim} ({source}), out_dim={self.out_dim}"
