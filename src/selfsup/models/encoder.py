"""The image encoder that downstream work uses: input normalisation + backbone, rebuilt from a spec.

Every encoder kind (image here, text in `text.py`) has the same face: `spec` (a frozen dataclass
that rebuilds it), `kind`, `out_dim`, `forward(model_input) -> (B, out_dim)` pooled features, and
`preprocess(raw)` that turns what a user holds (arrays, strings) into the model input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.image_layout import channels_first
from selfsup.models.backbones import build_backbone


@dataclass(frozen=True)
class ImageEncoderSpec:
    """Everything needed to rebuild an image encoder without the training code."""

    kind: ClassVar[str] = "image"

    backbone: str
    in_channels: int
    image_size: int | tuple[int, int]  # side of square images, or (height, width)
    cifar_stem: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Widths of projection-head layers (Linear-BN-ReLU each) kept on top of the backbone:
    # SimCLR v2 fine-tunes from the head's first layer. Empty for every other method, and for
    # encoder.json files written before this field existed.
    head_dims: tuple[int, ...] = ()
    # The backbone sees only CIE Lab lightness L / 100 of the RGB input (colorization): mean and
    # std are then L's, one value each. Files written before this field load with False.
    lightness: bool = False
    # Names and sizes of the input's channel groups, in channel order, when the data named them
    # (an npz of `rgb` and `depth` arrays: (("rgb", 3), ("depth", 1))); empty for grey or RGB.
    channel_groups: tuple[tuple[str, int], ...] = ()

    @property
    def height_width(self) -> tuple[int, int]:
        """(H, W) of the images the encoder was trained on."""
        if isinstance(self.image_size, int):
            return self.image_size, self.image_size
        return int(self.image_size[0]), int(self.image_size[1])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = (
            list(self.height_width) if not isinstance(self.image_size, int) else d["image_size"]
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageEncoderSpec:
        d = dict(d)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        size = d["image_size"]
        d["image_size"] = size if isinstance(size, int) else (int(size[0]), int(size[1]))
        d["head_dims"] = tuple(int(n) for n in d.get("head_dims", ()))
        d["channel_groups"] = tuple((str(g), int(c)) for g, c in d.get("channel_groups", ()))
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


class ImageEncoder(nn.Module):
    """Maps images (B, C, H, W), uint8 or float in [0, 1], to pooled features (B, out_dim).

    Normalisation by the training set's mean and std lives here, so a loaded encoder needs
    no preprocessing beyond `preprocess` (which also resizes and matches channels).
    """

    kind: ClassVar[str] = "image"

    def __init__(self, spec: ImageEncoderSpec):
        super().__init__()
        self.spec = spec
        channels = 1 if spec.lightness else spec.in_channels
        self.backbone = build_backbone(spec.backbone, channels, spec.cifar_stem)
        self.out_dim: int = self.backbone.out_dim
        if spec.head_dims:
            self.head = head_layers(self.out_dim, spec.head_dims)
            self.out_dim = spec.head_dims[-1]
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        if self.spec.lightness:
            from selfsup.augment.color_space import rgb_to_lab

            x = rgb_to_lab(x)[:, :1] / 100
        x = self.normalise(x)
        if self._channels_last():
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.backbone(x)
        return self.head(features) if self.spec.head_dims else features

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] to the backbone's input (reconstruction methods' pixel targets)."""
        return (images - self.mean) / self.std

    def unnormalise(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of `normalise`: backbone inputs back to images in [0, 1] (for pictures)."""
        return x * self.std + self.mean

    def _channels_last(self) -> bool:
        """Whether the weights were moved to channels_last (the input then follows them)."""
        for module in self.backbone.modules():
            if isinstance(module, nn.Conv2d):
                w = module.weight
                return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        return False

    def preprocess(self, raw: Any) -> torch.Tensor:
        """uint8 (N, C, H, W) for this encoder from images as a user holds them.

        One rule for `selfsup.embed`, the CLI and search: uint8 arrays, or float arrays in [0, 1];
        shaped (N, C, H, W), (N, H, W, C) or (N, H, W) (one image: drop N); grey becomes RGB
        and RGB grey as the encoder needs; other sizes are resized (shorter side, centre crop).
        """
        return preprocess_images(raw, self.spec)

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"backbone={s.backbone}, in_channels={s.in_channels}, "
            f"image_size={s.image_size}, out_dim={self.out_dim}"
        )


def head_layers(in_dim: int, dims: tuple[int, ...]) -> nn.Sequential:
    """Projection-head layers Linear(bias=False)-BN-ReLU of widths `dims` on `in_dim` features,
    laid out as the hidden layers of `selfsup.models.projection_head` (SimCLR v2's kept layers)."""
    layers: list[nn.Module] = []
    for dim in dims:
        if dim < 1:
            raise SelfsupError(f"head layer widths must be positive, got {dims}")
        layers += [nn.Linear(in_dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
        in_dim = dim
    return nn.Sequential(*layers)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) converted to `channels` (grey <-> RGB), so any data fits the encoder."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (images.float() * weights).sum(1, keepdim=True)
        return grey.round_().clamp_(0, 255).to(torch.uint8)
    return images.expand(-1, channels, -1, -1).contiguous()


def preprocess_images(raw: Any, spec: ImageEncoderSpec) -> torch.Tensor:
    """See `ImageEncoder.preprocess`."""
    from selfsup.data.resize import resize_to

    if isinstance(raw, str) or (isinstance(raw, (list, tuple)) and raw and isinstance(raw[0], str)):
        raise SelfsupError(
            "this is an image encoder; pass images (a uint8 array or tensor), not text"
        )
    x = torch.as_tensor(np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw)
    if x.is_floating_point():
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise SelfsupError(
                "float images must hold values in [0, 1]; pass uint8 pixels or divide by 255"
            )
        x = x.mul(255).round_().to(torch.uint8)
    elif x.dtype != torch.uint8:
        raise SelfsupError(f"images must be uint8 or float in [0, 1], got {x.dtype}")
    x = channels_first(x, spec.in_channels)
    if x.shape[1] != spec.in_channels and {int(x.shape[1]), spec.in_channels} - {1, 3}:
        raise SelfsupError(
            f"this encoder takes images of {spec.in_channels} channels "
            f"{_group_text(spec)}; got {x.shape[1]}"
        )
    x = match_channels(x, spec.in_channels)
    size = spec.image_size
    return resize_to(x, (size, size) if isinstance(size, int) else tuple(size)).contiguous()


def _group_text(spec: ImageEncoderSpec) -> str:
    """'(rgb 3 + depth 1)' for named channel groups, '' otherwise."""
    if not spec.channel_groups:
        return ""
    return "(" + " + ".join(f"{name} {c}" for name, c in spec.channel_groups) + ")"
