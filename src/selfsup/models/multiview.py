"""The multi-view image encoder of CMC (Tian et al. 2019): one backbone per view, where a view is a
group of channels of one image (L and ab of Lab, or explicit channel groups such as depth and
RGB), and the exported features are the concatenation of every view's features (the paper
evaluates on the concatenation, sec. 4.1).

Rebuilt by `selfsup.load` from its spec alone (kind "multiview"), with no training code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.augment.color_space import rgb_to_lab
from selfsup.errors import SelfsupError
from selfsup.models.backbones import build_backbone
from selfsup.models.encoder import ImageEncoderSpec, preprocess_images

# Lab channels standardised with fixed constants: L in [0, 100], a and b about [-110, 110].
LAB_MEAN = (50.0, 0.0, 0.0)
LAB_STD = (29.0, 20.0, 20.0)


def parse_split(split: str, in_channels: int) -> tuple[tuple[int, ...], ...]:
    """Channel groups of a split: "lab" is ((0,), (1, 2)) of Lab (3-channel RGB input only);
    "0,1,2|3" names the input channels of each view, every channel in at most one view."""
    if split == "lab":
        if in_channels != 3:
            raise SelfsupError(
                f"split 'lab' needs RGB images (3 channels), these have {in_channels}; name "
                f"channel groups instead, e.g. method.split='0|1,2'"
            )
        return ((0,), (1, 2))
    try:
        groups = tuple(
            tuple(int(c) for c in part.split(",")) for part in split.split("|") if part.strip()
        )
    except ValueError:
        raise SelfsupError(
            f"bad split {split!r}: 'lab' or channel groups like '0,1,2|3' (views split by |)"
        ) from None
    used = [c for g in groups for c in g]
    if len(groups) < 2 or any(not g for g in groups):
        raise SelfsupError(f"split {split!r} must name at least two non-empty channel groups")
    if len(set(used)) != len(used) or not all(0 <= c < in_channels for c in used):
        raise SelfsupError(
            f"split {split!r}: each channel in 0..{in_channels - 1} may appear in one view only"
        )
    return groups


@dataclass(frozen=True)
class MultiViewEncoderSpec:
    """An image spec plus the channel split; rebuilds the encoder without the training code."""

    kind: ClassVar[str] = "multiview"

    backbone: str
    in_channels: int
    image_size: int | tuple[int, int]
    cifar_stem: bool
    mean: tuple[float, ...]  # of the input channels (used by channel-group splits)
    std: tuple[float, ...]
    split: str

    @classmethod
    def from_image_spec(cls, spec: ImageEncoderSpec, split: str) -> MultiViewEncoderSpec:
        parse_split(split, spec.in_channels)
        return cls(
            spec.backbone,
            spec.in_channels,
            spec.image_size,
            spec.cifar_stem,
            tuple(spec.mean),
            tuple(spec.std),
            split,
        )

    def image_spec(self) -> ImageEncoderSpec:
        """The plain image spec of the input (for preprocessing)."""
        return ImageEncoderSpec(
            self.backbone, self.in_channels, self.image_size, self.cifar_stem, self.mean, self.std
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not isinstance(self.image_size, int):
            d["image_size"] = [int(s) for s in self.image_size]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultiViewEncoderSpec:
        d = dict(d)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        size = d["image_size"]
        d["image_size"] = size if isinstance(size, int) else (int(size[0]), int(size[1]))
        return cls(**{f.name: d[f.name] for f in fields(cls)})


class MultiViewEncoder(nn.Module):
    """Images (B, C, H, W), uint8 or float in [0, 1] -> concatenated view features (B, out_dim).

    `views(x)` gives each view's features separately (what CMC contrasts).
    """

    kind: ClassVar[str] = "multiview"

    def __init__(self, spec: MultiViewEncoderSpec):
        super().__init__()
        self.spec = spec
        self.groups = parse_split(spec.split, spec.in_channels)
        self.backbones = nn.ModuleList(
            build_backbone(spec.backbone, len(g), spec.cifar_stem) for g in self.groups
        )
        self.view_dims = [b.out_dim for b in self.backbones]
        self.out_dim: int = sum(self.view_dims)
        if spec.split == "lab":
            mean, std = LAB_MEAN, LAB_STD
        else:
            mean, std = spec.mean, spec.std
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def _standardised(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.spec.in_channels:
            raise SelfsupError(
                f"this encoder takes (B, {self.spec.in_channels}, H, W) images, got "
                f"{tuple(x.shape)}"
            )
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
        if self.spec.split == "lab":
            x = rgb_to_lab(x)
        return (x - self.mean) / self.std

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of each view (channel group), in split order."""
        x = self._standardised(x)
        return [b(x[:, list(g)]) for b, g in zip(self.backbones, self.groups, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.views(x), dim=1)

    def preprocess(self, raw: Any) -> torch.Tensor:
        """As the image encoder's `preprocess` (uint8 (N, C, H, W), resized, channels matched)."""
        return preprocess_images(raw, self.spec.image_spec())

    def extra_repr(self) -> str:
        return f"backbone={self.spec.backbone}, split={self.spec.split}, out_dim={self.out_dim}"
