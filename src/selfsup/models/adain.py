"""Content and style encoders and the AdaIN decoder of content/style disentanglement, for images
(2-D) and series (1-D): AdaIN-VC (Chou, Yeh & Lee 2019, "One-shot voice conversion by
separating speaker and content representations with instance normalization";
jjery2243542/adaptive_voice_conversion, model.py) on any channels-first input.

- The content encoder instance-normalises (no affine) its input per channel and every
  convolution's output, so it cannot carry a sample's global per-channel statistics: its output
  is unchanged by x -> a x + b per sample and channel (a > 0). It gives a content map (mu) and
  a log-variance of the same shape (a VAE-style code, as the reference's).
- The style encoder has no normalisation and pools globally: one vector per sample.
- The decoder instance-normalises every layer and re-injects style by adaptive instance
  normalisation: scale and shift per channel from the style vector.

Each encoder is an exportable encoder kind ("adain", `part` content or style), so either code
is saved, loaded and evaluated like any other encoder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.errors import SelfsupError

PARTS = ("content", "style")
KERNEL = 3


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each channel of each sample (B, C, *) to zero mean and unit variance over its positions
    (biased variance, as torch's InstanceNorm without affine)."""
    return F.instance_norm(x, eps=eps)


def adain(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalisation: x (B, C, *) instance-normalised, then each channel
    scaled by `scale` (B, C) and shifted by `shift` (B, C) (the style's statistics)."""
    view = (*scale.shape, *([1] * (x.dim() - 2)))
    return instance_norm(x) * scale.view(view) + shift.view(view)


@dataclass(frozen=True)
class AdainSpec:
    """Everything needed to rebuild one of the two encoders without the training code."""

    kind: ClassVar[str] = "adain"
    modality: str  # "image" (B, C, H, W) or "series" (B, C, T)
    part: str  # "content" or "style"
    in_channels: int
    image_size: int | tuple[int, int] = 0  # images: side or (H, W); 0 for series
    width: int = 64  # hidden channels
    blocks: int = 3  # residual blocks of two convolutions
    downsample: int = 1  # the last `downsample` blocks halve the resolution
    content_channels: int = 8  # channels of the content map
    style_dim: int = 32  # length of the style vector
    content_grid: int = 4  # images: the content map is average-pooled to this grid
    input_norm: bool = True  # content: instance-normalise the input too (per channel)
    channel_groups: tuple[tuple[str, int], ...] = ()  # images' named channel groups

    def __post_init__(self) -> None:
        if self.modality not in ("image", "series") or self.part not in PARTS:
            raise SelfsupError(
                f"adain encoder: modality must be image or series and part content or style; "
                f"got {self.modality!r}, {self.part!r}"
            )
        if min(self.width, self.blocks, self.content_channels, self.style_dim) < 1:
            raise SelfsupError("adain encoder: widths, blocks and code sizes must be positive")
        if not 0 <= self.downsample <= self.blocks:
            raise SelfsupError(
                f"adain encoder: downsample ({self.downsample}) must lie in 0..blocks "
                f"({self.blocks})"
            )

    @property
    def dims(self) -> int:
        return 2 if self.modality == "image" else 1

    @property
    def height_width(self) -> tuple[int, int]:
        """(H, W) of the images it was trained on."""
        size = self.image_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not isinstance(self.image_size, int):
            d["image_size"] = list(self.height_width)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdainSpec:
        d = dict(d)
        size = d.get("image_size", 0)
        d["image_size"] = size if isinstance(size, int) else (int(size[0]), int(size[1]))
        d["channel_groups"] = tuple((str(g), int(c)) for g, c in d.get("channel_groups", ()))
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def _conv(dims: int, c_in: int, c_out: int, kernel: int = KERNEL, stride: int = 1) -> nn.Module:
    """A convolution with reflect padding (a constant input stays constant at the borders, so
    instance norm removes an offset exactly), as the reference's `pad_layer`."""
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    return conv(c_in, c_out, kernel, stride, padding=kernel // 2, padding_mode="reflect")


def _pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    if stride == 1:
        return x
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool1d
    return pool(x, stride, ceil_mode=True)


def _strides(spec: AdainSpec) -> list[int]:
    return [2 if b >= spec.blocks - spec.downsample else 1 for b in range(spec.blocks)]


class ContentNet(nn.Module):
    """x -> (mu, log-variance), each (B, content_channels, *spatial / 2^downsample): conv, IN,
    ReLU, then residual blocks (conv, IN, ReLU, strided conv, IN, ReLU), then 1x1 heads."""

    def __init__(self, spec: AdainSpec):
        super().__init__()
        d, w = spec.dims, spec.width
        self.input_norm = spec.input_norm
        self.first = _conv(d, spec.in_channels, w)
        self.convs = nn.ModuleList()
        for stride in _strides(spec):
            self.convs.append(nn.ModuleList([_conv(d, w, w), _conv(d, w, w, stride=stride)]))
        self.strides = _strides(spec)
        self.mean = _conv(d, w, spec.content_channels, kernel=1)
        self.log_var = _conv(d, w, spec.content_channels, kernel=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_norm:
            x = instance_norm(x)
        out = F.relu(instance_norm(self.first(x)))
        for (a, b), stride in zip(self.convs, self.strides, strict=True):
            y = F.relu(instance_norm(a(out)))
            y = F.relu(instance_norm(b(y)))
            out = y + _pool(out, stride)
        return self.mean(out), self.log_var(out)


class StyleNet(nn.Module):
    """x -> style vector (B, style_dim): conv, ReLU, residual blocks without normalisation,
    global average pooling, a residual dense block, a linear output (the speaker encoder)."""

    def __init__(self, spec: AdainSpec):
        super().__init__()
        d, w = spec.dims, spec.width
        self.first = _conv(d, spec.in_channels, w)
        self.strides = _strides(spec)
        self.convs = nn.ModuleList(
            nn.ModuleList([_conv(d, w, w), _conv(d, w, w, stride=s)]) for s in self.strides
        )
        self.dense = nn.Sequential(nn.Linear(w, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU())
        self.out = nn.Linear(w, spec.style_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.first(x))
        for (a, b), stride in zip(self.convs, self.strides, strict=True):
            out = F.relu(b(F.relu(a(out)))) + _pool(out, stride)
        pooled = out.flatten(2).mean(2)
        return self.out(pooled + self.dense(pooled))


class AdainDecoder(nn.Module):
    """(content map, style vector) -> the input: 1x1 conv, IN, ReLU, then residual blocks
    (conv, AdaIN, ReLU, conv (+ nearest upsampling), AdaIN, ReLU), then a 1x1 conv to the
    input's channels; each AdaIN's scale and shift is a linear map of the style vector."""

    def __init__(self, spec: AdainSpec):
        super().__init__()
        d, w = spec.dims, spec.width
        self.first = _conv(d, spec.content_channels, w, kernel=1)
        self.ups = list(reversed(_strides(spec)))
        self.convs = nn.ModuleList(
            nn.ModuleList([_conv(d, w, w), _conv(d, w, w)]) for _ in self.ups
        )
        self.affine = nn.ModuleList(
            nn.Linear(spec.style_dim, 2 * w) for _ in range(2 * len(self.ups))
        )
        self.out = _conv(d, w, spec.in_channels, kernel=1)

    def _adain(self, x: torch.Tensor, style: torch.Tensor, layer: int) -> torch.Tensor:
        shift, scale = self.affine[layer](style).chunk(2, dim=1)
        return adain(x, shift, scale)

    def forward(self, content: torch.Tensor, style: torch.Tensor, size: tuple[int, ...]) -> Any:
        out = F.relu(instance_norm(self.first(content)))
        for i, ((a, b), up) in enumerate(zip(self.convs, self.ups, strict=True)):
            y = F.relu(self._adain(a(out), style, 2 * i))
            y = b(y)
            if up > 1:
                y = F.interpolate(y, scale_factor=up, mode="nearest")
                out = F.interpolate(out, scale_factor=up, mode="nearest")
            out = F.relu(self._adain(y, style, 2 * i + 1)) + out
        x = self.out(out)
        if tuple(x.shape[2:]) != tuple(size):  # odd sizes: the upsampling overshoots
            x = F.interpolate(x, size=size, mode="bilinear" if x.dim() == 4 else "linear")
        return x


class AdainEncoder(nn.Module):
    """One exported code of the disentangling autoencoder: `part` "content" gives the pooled
    content map mu (images: average-pooled to a content_grid x content_grid grid and
    flattened, where the strokes are is the content; series: each channel's mean and standard
    deviation over time, as a waveform's phase is not content), "style" the style vector."""

    kind: ClassVar[str] = "adain"

    def __init__(self, spec: AdainSpec):
        super().__init__()
        self.spec = spec
        self.modality: str = spec.modality  # the data it encodes (batch field)
        self.net = ContentNet(spec) if spec.part == "content" else StyleNet(spec)
        if spec.part == "style":
            self.out_dim: int = spec.style_dim
        elif spec.modality == "image":
            self.out_dim = spec.content_channels * spec.content_grid**2
        else:
            self.out_dim = 2 * spec.content_channels

    def input(self, x: Any) -> torch.Tensor:
        """The model input as float (B, C, ...): images in [0, 1] (uint8 scaled), series as
        they are (NaN padding as 0; the method takes equal-length series)."""
        if isinstance(x, dict):
            x = x[self.modality]
        want = self.spec.dims + 2
        if x.dim() != want or x.shape[1] != self.spec.in_channels:
            layout = "(B, C, H, W)" if self.spec.dims == 2 else "(B, C, T)"
            raise SelfsupError(
                f"adain {self.spec.part} encoder wants {layout} with C = "
                f"{self.spec.in_channels}; got {tuple(x.shape)}"
            )
        if x.dtype == torch.uint8:
            return x.float() / 255
        x = x.float()
        return torch.nan_to_num(x) if self.spec.modality == "series" else x

    def code(self, x: torch.Tensor) -> Any:
        """The unpooled code of a float input: (mu, log-variance) maps, or the style vector."""
        return self.net(x)

    def pool(self, mu: torch.Tensor) -> torch.Tensor:
        """The content map mu as one vector per sample (see the class)."""
        if self.spec.modality == "image":
            g = self.spec.content_grid
            return F.adaptive_avg_pool2d(mu, g).flatten(1)
        return torch.cat([mu.mean(2), mu.std(2, unbiased=False)], dim=1)

    def forward(self, x: Any) -> torch.Tensor:
        code = self.code(self.input(x))
        return self.pool(code[0]) if self.spec.part == "content" else code

    def preprocess(self, raw: Any) -> torch.Tensor:
        """The model input from what a user holds: images as the image encoder takes them
        (uint8 or float in [0, 1]), series (N, C, T) or (N, T)."""
        if self.spec.modality == "image":
            from selfsup.models.encoder import preprocess_images

            return preprocess_images(raw, self.spec)  # type: ignore[arg-type]
        from selfsup.models.series_input import series_tensor

        return series_tensor(raw, self.spec.in_channels)

    def extra_repr(self) -> str:
        s = self.spec
        return f"{s.modality} {s.part}, in_channels={s.in_channels}, out_dim={self.out_dim}"
