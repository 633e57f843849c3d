"""TS2Vec's encoder (Yue et al. 2022, reference: github.com/yuezhihan/ts2vec, models/): a linear
projection of each time step (C -> 64), timestamp masking of the projected input while training,
11 residual blocks of two dilated "same" convolutions (kernel 3, dilation 2^i, GELU before each
convolution; 10 blocks of 64 channels and a last block to 320, its residual through a 1x1
convolution) and dropout 0.1 on the representations while training.

`timestamps` gives a representation per time step; the exported series vector is their maximum
over the valid steps (the reference's encoding_window="full_series"), so padding never wins it.
Each series is z-normalised per channel over its valid steps before the projection (see
docs/series.md, "TS2Vec", for why this and not the reference's data-set-wide normalisation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.errors import SelfsupError
from selfsup.models.series_input import series_tensor, znormalise

KERNEL = 3


@dataclass(frozen=True)
class Ts2VecSpec:
    """Everything needed to rebuild a TS2Vec encoder without the training code."""

    kind: ClassVar[str] = "ts2vec"
    modality: ClassVar[str] = "series"  # the data it encodes (batch field "series")
    in_channels: int
    hidden_dims: int = 64
    output_dims: int = 320
    depth: int = 10  # residual blocks of hidden_dims, before the last one to output_dims
    mask_p: float = 0.5  # share of time steps masked while training (the reference's binomial)
    dropout: float = 0.1  # on the representations while training

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ts2VecSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


class DilatedBlock(nn.Module):
    """GELU, conv (dilation d), GELU, conv (dilation d), plus the input (1x1-projected when the
    width changes, and in the last block, as the reference's ConvBlock)."""

    def __init__(self, c_in: int, c_out: int, dilation: int, final: bool):
        super().__init__()
        # kernel 3: the receptive field 2d + 1 is odd, so padding d keeps the length ("same")
        self.conv1 = nn.Conv1d(c_in, c_out, KERNEL, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, KERNEL, padding=dilation, dilation=dilation)
        self.projector = nn.Conv1d(c_in, c_out, 1) if c_in != c_out or final else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.projector is None else self.projector(x)
        return self.conv2(F.gelu(self.conv1(F.gelu(x)))) + residual


class Ts2VecEncoder(nn.Module):
    """Maps series (B, C, T), or {"series", "mask"}, to series vectors (B, output_dims).

    Its public face: `normalise` (per series and channel, over the valid steps), `timestamps`
    (a representation per step and the mask of valid steps) and `pool` (their masked maximum).
    """

    kind: ClassVar[str] = "ts2vec"
    modality: ClassVar[str] = "series"

    def __init__(self, spec: Ts2VecSpec):
        super().__init__()
        self.spec = spec
        self.input_fc = nn.Linear(spec.in_channels, spec.hidden_dims)
        widths = [spec.hidden_dims] * spec.depth + [spec.output_dims]
        self.blocks = nn.Sequential(
            *(
                DilatedBlock(
                    widths[i - 1] if i else spec.hidden_dims, w, 2**i, i == len(widths) - 1
                )
                for i, w in enumerate(widths)
            )
        )
        self.repr_dropout = nn.Dropout(spec.dropout)
        self.out_dim: int = spec.output_dims

    def _unpack(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        series, mask = (x["series"], x.get("mask")) if isinstance(x, dict) else (x, None)
        if series.dim() != 3 or series.shape[1] != self.spec.in_channels:
            raise SelfsupError(
                f"ts2vec encoder wants (B, {self.spec.in_channels}, T); got {tuple(series.shape)}"
            )
        series = series.float()
        # a step is valid when the mask says so and no channel is NaN (NaN: missing or padding)
        valid = ~series.isnan().any(1)
        if mask is not None:
            valid = valid & mask.bool()
        return torch.where(valid[:, None], series, 0.0), valid

    @staticmethod
    def normalise(series: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Each series z-normalised per channel over its valid steps; invalid steps are 0."""
        return znormalise(series, valid)

    def timestamps(self, x: Any, normalised: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations (B, T, output_dims) of every step and the (B, T) mask of valid steps.
        `normalised`: the series are already normalised (TS2Vec normalises before cropping)."""
        series, valid = self._unpack(x)
        if not normalised:
            series = self.normalise(series, valid)
        h = self.input_fc(series.transpose(1, 2))  # B x T x hidden
        keep = valid
        if self.training and self.spec.mask_p > 0:
            keep = keep & (torch.rand(keep.shape, device=keep.device) >= self.spec.mask_p)
        h = h * keep[..., None].to(h.dtype)
        out = self.repr_dropout(self.blocks(h.transpose(1, 2)))
        return out.transpose(1, 2), valid

    @staticmethod
    def pool(reps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The maximum over the valid steps, (B, D); a series with no valid step gets zeros."""
        pooled = reps.masked_fill(~valid[..., None], float("-inf")).amax(1)
        return torch.where(valid.any(1, keepdim=True), pooled, 0.0)

    def forward(self, x: Any) -> torch.Tensor:
        return self.pool(*self.timestamps(x))

    def preprocess(self, raw: Any) -> torch.Tensor:
        """float32 (N, C, T) from numpy or torch series shaped (N, C, T) or (N, T) (C = 1);
        NaN marks missing steps (padding at the end of shorter series)."""
        return series_tensor(raw, self.spec.in_channels)

    def extra_repr(self) -> str:
        s = self.spec
        return f"in_channels={s.in_channels}, hidden={s.hidden_dims}, out={s.output_dims}"
