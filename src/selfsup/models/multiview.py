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


SPLIT_FORMS = (
    "'auto' (Lab for RGB, one view per named channel group), 'lab' (L | ab of RGB), or views "
    "split by '|', each a comma list of channel indices, ranges and group names: "
    "'rgb|depth', '0-2|3', '0,1,2|3'"
)


def _describe(in_channels: int, groups: tuple[tuple[str, int], ...]) -> str:
    if not groups:
        return f"{in_channels} channel(s)"
    names = ", ".join(f"{n} = {_span(groups, n)}" for n, _ in groups)
    return f"{in_channels} channels: {names}"


def _span(groups: tuple[tuple[str, int], ...], name: str) -> str:
    start = 0
    for n, c in groups:
        if n == name:
            return str(start) if c == 1 else f"{start}-{start + c - 1}"
        start += c
    raise KeyError(name)


def parse_split(
    split: str, in_channels: int, groups: tuple[tuple[str, int], ...] = ()
) -> tuple[tuple[int, ...], ...]:
    """Channel groups (one tuple of input channels per view) of a split.

    "lab" is ((0,), (1, 2)) of Lab (3-channel RGB input only). "auto" is "lab" for RGB input and
    one view per named channel group (`groups`, e.g. (("rgb", 3), ("depth", 1)) from an npz of
    `rgb` and `depth` arrays). Otherwise views are split by "|", each a comma list of channel
    indices ("3"), inclusive ranges ("0-2") and group names ("rgb"); at least two views, every
    channel in at most one. Any other split is a SelfsupError that lists the channels.
    """
    where = _describe(in_channels, groups)
    if split == "auto":
        if len(groups) >= 2:
            split = "|".join(n for n, _ in groups)
        elif in_channels == 3:
            split = "lab"
        else:
            raise SelfsupError(
                f"split 'auto' needs RGB images or named channel groups; these images have "
                f"{where}: name the views, e.g. method.split='0|1' ({SPLIT_FORMS})"
            )
    if split == "lab":
        if in_channels != 3:
            raise SelfsupError(
                f"split 'lab' needs RGB images (3 channels), these have {where}; name channel "
                f"groups instead, e.g. method.split='0|1,2' ({SPLIT_FORMS})"
            )
        return ((0,), (1, 2))
    names = {n: c for n, c in groups}
    views: list[tuple[int, ...]] = []
    try:
        for part in split.split("|"):
            channels: list[int] = []
            for item in (i.strip() for i in part.split(",")):
                if item in names:
                    lo, _, hi = _span(groups, item).partition("-")
                    channels += range(int(lo), int(hi or lo) + 1)
                elif "-" in item:
                    lo, hi = item.split("-")
                    if int(hi) < int(lo):
                        raise ValueError(item)
                    channels += range(int(lo), int(hi) + 1)
                elif item:
                    channels.append(int(item))
            views.append(tuple(channels))
    except ValueError:
        views = []
    used = [c for g in views for c in g]
    if (
        len(views) < 2
        or any(not g for g in views)
        or len(set(used)) != len(used)
        or not all(0 <= c < in_channels for c in used)
    ):
        raise SelfsupError(
            f"bad split {split!r} for images of {where}: a split is {SPLIT_FORMS}; it needs two "
            f"or more non-empty views and each channel in one view at most"
        )
    return tuple(views)


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
    channel_groups: tuple[tuple[str, int], ...] = ()  # the input's named groups, if any

    @classmethod
    def from_image_spec(cls, spec: ImageEncoderSpec, split: str) -> MultiViewEncoderSpec:
        """The spec of `split` over the input of `spec`; a split naming channel groups or
        ranges is stored as channel indices ("rgb|depth" -> "0,1,2|3"), so that a loaded
        encoder needs no names."""
        groups = parse_split(split, spec.in_channels, spec.channel_groups)
        lab = split == "lab" or (split == "auto" and len(spec.channel_groups) < 2)
        split = "lab" if lab else "|".join(",".join(str(c) for c in g) for g in groups)
        return cls(
            spec.backbone,
            spec.in_channels,
            spec.image_size,
            spec.cifar_stem,
            tuple(spec.mean),
            tuple(spec.std),
            split,
            tuple(spec.channel_groups),
        )

    def image_spec(self) -> ImageEncoderSpec:
        """The plain image spec of the input (for preprocessing)."""
        return ImageEncoderSpec(
            self.backbone,
            self.in_channels,
            self.image_size,
            self.cifar_stem,
            self.mean,
            self.std,
            channel_groups=self.channel_groups,
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
        d["channel_groups"] = tuple((str(g), int(c)) for g, c in d.get("channel_groups", ()))
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


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
