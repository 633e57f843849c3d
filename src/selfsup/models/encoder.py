"""The encoder that downstream work uses: input normalisation + backbone, described by a config."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from selfsup.models.backbones import build_backbone


@dataclass(frozen=True)
class EncoderSpec:
    """Everything needed to rebuild an encoder without the training code."""

    backbone: str
    in_channels: int
    image_size: int
    cifar_stem: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderSpec:
        d = dict(d)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


class Encoder(nn.Module):
    """Maps float images in [0, 1], shape (B, C, H, W), to pooled features (B, out_dim).

    Normalisation by the training set's mean and std lives here, so a loaded encoder needs
    no preprocessing beyond scaling pixels to [0, 1].
    """

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.spec = spec
        self.backbone = build_backbone(spec.backbone, spec.in_channels, spec.cifar_stem)
        self.out_dim: int = self.backbone.out_dim
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return self.backbone((x - self.mean) / self.std)

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"backbone={s.backbone}, in_channels={s.in_channels}, "
            f"image_size={s.image_size}, out_dim={self.out_dim}"
        )
