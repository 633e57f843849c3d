"""The series encoder (CPC's, van den Oord et al. 2018): a strided 1-D convolutional encoder on
the raw signal, then a GRU context network; the exported features are the context vectors
averaged over the valid time steps.

Two layouts, chosen by the training series' length unless `model.backbone` names one:
- "cpc" (series of at least 4,000 steps: audio): CPC's five layers, kernels 10, 8, 4, 4, 4 and
  strides 5, 4, 2, 2, 2 (160x down: 100 steps per second at 16 kHz), 512 channels, GRU 256;
- "cpc-small" (shorter series: UCR/UEA): kernels 5, 3, 3 with strides 2, 2, 1 (4x down) for
  series of at least 128 steps, kernels 3, 3, 3 with strides 1, 1, 1 below (a receptive field
  of 7 steps), 64 channels, GRU 64, so that a series of a few dozen steps keeps enough steps
  for predictions several steps ahead.
Each series is z-normalised per channel over its valid steps inside the encoder (UCR sets
differ in scale; a loaded encoder needs no statistics of the training set). Normalisation
between layers is per time step over channels (a LayerNorm): no statistic mixes samples or
looks into the future, which CPC's task would otherwise exploit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.errors import SelfsupError
from selfsup.models.series_input import series_tensor, znormalise
from selfsup.models.ts2vec import Ts2VecSpec
from selfsup.models.tstcc import tstcc_spec

AUDIO_MIN_LENGTH = 4000
SERIES_BACKBONES = ("cpc", "cpc-small", "ts2vec", "tstcc")


@dataclass(frozen=True)
class SeriesEncoderSpec:
    """Everything needed to rebuild a series encoder without the training code."""

    kind: ClassVar[str] = "series"
    in_channels: int
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    channels: int
    context_dim: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesEncoderSpec:
        d = dict(d)
        d["kernels"], d["strides"] = tuple(d["kernels"]), tuple(d["strides"])
        return cls(**{f.name: d[f.name] for f in fields(cls)})

    @property
    def receptive_field(self) -> int:
        """Input steps one output step sees (the shortest series the encoder accepts)."""
        field, jump = 1, 1
        for k, s in zip(self.kernels, self.strides, strict=True):
            field += (k - 1) * jump
            jump *= s
        return field


def series_spec(in_channels: int, length: int, backbone: str | None = None) -> Any:
    """The spec of `backbone` for series of `length` steps; unnamed: "cpc" at >= 4000 steps
    (audio), else "cpc-small"; "ts2vec" and "tstcc" are those methods' encoders."""
    if backbone == "ts2vec":  # TS2Vec's dilated CNN (selfsup.models.ts2vec)
        return Ts2VecSpec(in_channels)
    if backbone is None:
        backbone = "cpc" if length >= AUDIO_MIN_LENGTH else "cpc-small"
    if backbone == "cpc":
        return SeriesEncoderSpec(in_channels, (10, 8, 4, 4, 4), (5, 4, 2, 2, 2), 512, 256)
    if backbone == "cpc-small":
        if length >= 128:
            return SeriesEncoderSpec(in_channels, (5, 3, 3), (2, 2, 1), 64, 64)
        return SeriesEncoderSpec(in_channels, (3, 3, 3), (1, 1, 1), 64, 64)
    if backbone == "tstcc":
        return tstcc_spec(in_channels, length)
    raise SelfsupError(
        f"unknown series backbone {backbone!r}; choose one of: {', '.join(SERIES_BACKBONES)}"
    )


class _StepNorm(nn.Module):
    """LayerNorm over channels at each time step of (B, C, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class SeriesEncoder(nn.Module):
    """Maps series (B, C, T), or {"series", "mask"}, to pooled context features (B, context_dim).

    Its public face: `latents` (per-step z of the convolutions and the mask of valid steps),
    `context` (the GRU's c over z) and `pool` (c's mean over valid steps); CPC trains on z and c.
    None waits for the device; only `forward` outside training checks on the host that each
    series has a feature.
    """

    kind: ClassVar[str] = "series"

    def __init__(self, spec: SeriesEncoderSpec):
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        c_in = spec.in_channels
        for k, s in zip(spec.kernels, spec.strides, strict=True):
            layers += [nn.Conv1d(c_in, spec.channels, k, s), _StepNorm(spec.channels), nn.ReLU()]
            c_in = spec.channels
        self.convs = nn.Sequential(*layers)
        self.gru = nn.GRU(spec.channels, spec.context_dim, batch_first=True)
        self.out_dim: int = spec.context_dim

    def latents(self, x: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latents z (B, T', channels) of the z-normalised series and the (B, T') mask of valid
        steps (a latent is valid when every input step it sees is), None without a mask."""
        series, mask = (x["series"], x.get("mask")) if isinstance(x, dict) else (x, None)
        if series.dim() != 3 or series.shape[1] != self.spec.in_channels:
            raise SelfsupError(
                f"series encoder wants (B, {self.spec.in_channels}, T); got {tuple(series.shape)}"
            )
        if series.shape[2] < self.spec.receptive_field:
            raise SelfsupError(
                f"series of {series.shape[2]} steps are shorter than the encoder's receptive "
                f"field ({self.spec.receptive_field} steps)"
            )
        series = series.float()
        x_norm = znormalise(series, mask)
        z = self.convs(x_norm).transpose(1, 2)
        if mask is None:
            return z, None
        invalid = (~mask.bool())[:, None].float()
        for k, s in zip(self.spec.kernels, self.spec.strides, strict=True):
            invalid = F.max_pool1d(invalid, k, s)
        return z, invalid[:, 0] < 0.5

    def context(self, z: torch.Tensor) -> torch.Tensor:
        """The GRU's context c_t (B, T', context_dim), each from z_1..z_t only."""
        return self.gru(z)[0]

    def pool(self, c: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """The mean context vector over the valid steps, (B, context_dim)."""
        if valid is None:
            return c.mean(1)
        w = valid[..., None].to(c.dtype)
        return (c * w).sum(1) / w.sum(1).clamp_min(1)

    def forward(self, x: Any) -> torch.Tensor:
        z, valid = self.latents(x)
        # checked outside training only: a training step never waits for the device (a series
        # without a valid latent then pools to zeros)
        if valid is not None and not self.training and not bool(valid.any(1).all()):
            raise SelfsupError(
                f"a series is shorter than the encoder's receptive field "
                f"({self.spec.receptive_field} steps) and would have no features; drop such "
                "series or set data.series_lengths=crop"
            )
        return self.pool(self.context(z), valid)

    def preprocess(self, raw: Any) -> torch.Tensor:
        """float32 (N, C, T) from numpy or torch series shaped (N, C, T) or (N, T) (C = 1)."""
        return series_tensor(raw, self.spec.in_channels)

    def extra_repr(self) -> str:
        s = self.spec
        return f"in_channels={s.in_channels}, strides={s.strides}, context_dim={s.context_dim}"
