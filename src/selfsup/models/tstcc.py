"""TS-TCC's networks (Eldele et al. 2021, the reference's `base_Model`): three convolution
blocks, Conv1d (no bias) -> BatchNorm -> ReLU -> MaxPool(2, stride 2, padding 1), dropout 0.35
after the first; 32, 64 and `channels` (128) output channels; kernel 8 (stride 1, padding 4) in
blocks 2 and 3, and `kernel_size` / `stride` in block 1 (the reference's configs: 8 / 1 for its
small sets, Epilepsy and HAR; 25 / 3 and 32 / 4 for its long ones, Sleep-EDF and FD).

The per-step latents z (B, T', channels) are what TS-TCC's temporal contrasting trains on; the
exported series vector pools them (`pooling`: the mean, or the max, over the valid steps: see
docs/series.md for the measurement against the reference's flattened features, which depend on
the series' length). Each series is z-normalised per channel over its valid steps, and padding
(the modality's mask) is zeroed after every block, so a padded series gets the latents it has
alone (in eval mode: BatchNorm's training statistics count every step of the batch).

`ContextTransformer` is the reference's `Seq_Transformer`, which the method trains beside the
encoder (it is not exported).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.series_input import series_tensor, znormalise

POOLINGS = ("mean", "max")


@dataclass(frozen=True)
class TSTCCEncoderSpec:
    """Everything needed to rebuild a TS-TCC encoder without the training code."""

    kind: ClassVar[str] = "tstcc"
    modality: ClassVar[str] = "series"
    in_channels: int
    kernel_size: int = 8
    stride: int = 1
    channels: int = 128
    dropout: float = 0.35
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise SelfsupError(
                f"tstcc pooling {self.pooling!r} is not one of: {', '.join(POOLINGS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TSTCCEncoderSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def tstcc_spec(in_channels: int, length: int) -> TSTCCEncoderSpec:
    """The reference's small-set encoder (kernel 8, stride 1) for series of any length."""
    return TSTCCEncoderSpec(in_channels)


class TSTCCEncoder(nn.Module):
    """Maps series (B, C, T), or {"series", "mask"}, to pooled latents (B, channels).

    Its public face, shared with the `series` encoder: `latents` (per-step z and the mask of
    valid steps) and `pool`; TS-TCC trains on z.
    """

    kind: ClassVar[str] = "tstcc"
    modality: ClassVar[str] = "series"

    def __init__(self, spec: TSTCCEncoderSpec):
        super().__init__()
        self.spec = spec
        widths = (spec.in_channels, 32, 64, spec.channels)
        # (kernel, stride, padding) of each block's convolution, as the reference's
        self.convs_geometry = (
            (spec.kernel_size, spec.stride, spec.kernel_size // 2),
            (8, 1, 4),
            (8, 1, 4),
        )
        self.blocks = nn.ModuleList()
        for i, (k, s, p) in enumerate(self.convs_geometry):
            layers: list[nn.Module] = [
                nn.Conv1d(widths[i], widths[i + 1], k, s, p, bias=False),
                nn.BatchNorm1d(widths[i + 1]),
                nn.ReLU(),
                nn.MaxPool1d(2, 2, 1),
            ]
            if i == 0:
                layers.append(nn.Dropout(spec.dropout))
            self.blocks.append(nn.Sequential(*layers))
        self.out_dim: int = spec.channels

    def _lengths(self, length: torch.Tensor) -> list[torch.Tensor]:
        """Valid lengths after each block's convolution and after its pooling."""
        out = []
        for k, s, p in self.convs_geometry:
            length = torch.div(length + 2 * p - k, s, rounding_mode="floor") + 1
            length_pooled = torch.div(length, 2, rounding_mode="floor") + 1  # MaxPool1d(2, 2, 1)
            out += [length, length_pooled]
            length = length_pooled
        return out

    def latents(self, x: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latents z (B, T', channels) of the z-normalised series and the (B, T') mask of valid
        steps (the steps the series alone would have), None without a mask."""
        series, mask = (x["series"], x.get("mask")) if isinstance(x, dict) else (x, None)
        if series.dim() != 3 or series.shape[1] != self.spec.in_channels:
            raise SelfsupError(
                f"tstcc encoder wants (B, {self.spec.in_channels}, T); got {tuple(series.shape)}"
            )
        series = series.float()
        h = znormalise(series, mask)
        if mask is None:
            for block in self.blocks:
                h = block(h)
            return h.transpose(1, 2), None
        lengths = self._lengths(mask.long().sum(1))
        for i, block in enumerate(self.blocks):
            conv_relu, rest = block[:3], block[3:]
            h = conv_relu(h)
            # zero what the series alone would not have: after the ReLU a zero never wins the
            # max-pool, so the pooled steps beyond the valid length are zero too
            h = h * (torch.arange(h.shape[2], device=h.device) < lengths[2 * i][:, None])[:, None]
            h = rest(h)
        valid = torch.arange(h.shape[2], device=h.device) < lengths[-1][:, None]
        return h.transpose(1, 2), valid

    def pool(self, z: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """The mean (or max) latent over the valid steps, (B, channels)."""
        if self.spec.pooling == "max":
            if valid is not None:
                z = z.masked_fill(~valid[..., None], float("-inf"))
            return z.amax(1)
        if valid is None:
            return z.mean(1)
        w = valid[..., None].to(z.dtype)
        return (z * w).sum(1) / w.sum(1).clamp_min(1)

    def forward(self, x: Any) -> torch.Tensor:
        return self.pool(*self.latents(x))

    def preprocess(self, raw: Any) -> torch.Tensor:
        """float32 (N, C, T) from numpy or torch series shaped (N, C, T) or (N, T) (C = 1)."""
        return series_tensor(raw, self.spec.in_channels)

    def extra_repr(self) -> str:
        s = self.spec
        return f"in_channels={s.in_channels}, kernel_size={s.kernel_size}, pooling={s.pooling}"


class _Attention(nn.Module):
    """Multi-head self-attention over the kept keys; the reference scales the scores by
    dim ** -0.5 (the whole width, not a head's)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.scale = heads, dim**-0.5
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) * self.scale
        scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.to_out(out)


class ContextTransformer(nn.Module):
    """TS-TCC's `Seq_Transformer`: the latents are embedded to `dim`, a learned context token is
    put first, `depth` pre-norm blocks (attention, then a ReLU MLP of `mlp_dim`, each residual)
    run, and the context token's output is c_t. `keep` (B, T) marks the latents c_t may see
    (z_1..z_t): the others are masked out of every attention, which equals cutting them off."""

    def __init__(
        self, latent_dim: int, dim: int, depth: int, heads: int, mlp_dim: int, dropout: float
    ):
        super().__init__()
        self.embed = nn.Linear(latent_dim, dim)
        self.c_token = nn.Parameter(torch.randn(1, 1, dim))
        self.layers = nn.ModuleList()
        for _ in range(depth):
            mlp = nn.Sequential(
                nn.Linear(dim, mlp_dim),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(mlp_dim, dim),
                nn.Dropout(dropout),
            )
            attention = _Attention(dim, heads, dropout)
            self.layers.append(
                nn.ModuleList([nn.LayerNorm(dim), attention, nn.LayerNorm(dim), mlp])
            )

    def forward(self, z: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.embed(z)
        x = torch.cat([self.c_token.expand(len(x), -1, -1), x], dim=1)
        keep = torch.cat([torch.ones_like(keep[:, :1]), keep], dim=1)
        for norm1, attention, norm2, mlp in self.layers:
            x = x + attention(norm1(x), keep)
            x = x + mlp(norm2(x))
        return x[:, 0]
