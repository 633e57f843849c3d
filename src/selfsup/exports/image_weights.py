"""What the timm and torchvision exports share: which image encoders another library's model
reproduces exactly, and the backbone's state dict under that library's parameter names.

Our image encoder normalises inside `forward` ((x - mean) / std on images in [0, 1]); a timm or
torchvision model does not, so the exports give the backbone alone and record mean and std
(timm's pretrained_cfg, the model card) for the user's transform."""

from __future__ import annotations

from typing import Any

import torch

from selfsup.errors import SelfsupError

RESNETS = ("resnet18", "resnet34", "resnet50")
OTHER_FORMATS = "--format onnx (the whole encoder, normalisation included) or --format selfsup"


def check_image_encoder(encoder: Any, fmt: str) -> None:
    """An image encoder whose input the other library's model takes as it is: refuse the other
    kinds, a kept projection head and a colour-space input, naming the formats that fit."""
    if encoder.kind != "image":
        text = " (or --format sentence-transformers)" if encoder.kind == "text" else ""
        raise SelfsupError(
            f"--format {fmt} takes image encoders; this run's encoder is of kind "
            f"{encoder.kind!r}: export it with {OTHER_FORMATS}{text}"
        )
    spec = encoder.spec
    if spec.head_dims:
        raise SelfsupError(
            f"this encoder keeps {len(spec.head_dims)} projection-head layer(s) "
            f"{list(spec.head_dims)} on top of its {spec.backbone} backbone (SimCLR v2); "
            f"{fmt}'s model has no place for them and would give other features: export it "
            f"with {OTHER_FORMATS}"
        )
    if spec.lightness:
        raise SelfsupError(
            f"this encoder sees the CIE Lab lightness of its RGB input (colorization), which a "
            f"{fmt} model does not compute: export it with {OTHER_FORMATS}"
        )


def no_equivalent(encoder: Any, fmt: str, what: str) -> SelfsupError:
    """The error for a backbone that `fmt` has no architecture for."""
    return SelfsupError(
        f"--format {fmt} exports {what}; this encoder's backbone {encoder.spec.backbone!r} "
        f"has no equivalent there: export it with {OTHER_FORMATS}"
    )


def backbone_state(encoder: Any, prefix: str = "backbone.") -> dict[str, torch.Tensor]:
    """The backbone's parameters and buffers without `prefix`, contiguous CPU copies (the
    encoder's own normalisation buffers are not persistent: they are not in the state dict)."""
    state = encoder.state_dict()
    return {
        key.removeprefix(prefix): value.detach().cpu().contiguous().clone()
        for key, value in state.items()
        if key.startswith(prefix)
    }


def stem_lines(spec: Any, model: str = "model") -> list[str]:
    """The lines that make a torchvision/timm ResNet's stem our encoder's, [] when it is
    ImageNet's as is (3 channels, 7x7 stride-2 conv, max-pool)."""
    c = spec.in_channels
    if spec.cifar_stem:
        return [
            f"{model}.conv1 = torch.nn.Conv2d({c}, 64, 3, stride=1, padding=1, bias=False)",
            f"{model}.maxpool = torch.nn.Identity()",
        ]
    if c != 3:
        return [f"{model}.conv1 = torch.nn.Conv2d({c}, 64, 7, stride=2, padding=3, bias=False)"]
    return []


def stem_difference(spec: Any) -> str:
    """What differs from torchvision's ImageNet stem, in words ('' when nothing does)."""
    if spec.cifar_stem:
        return (
            "the CIFAR stem (SimCLR appendix B.9): conv1 is a 3x3 convolution of stride 1 "
            f"({spec.in_channels} input channels) instead of 7x7 stride 2, and there is no "
            "max-pool after it, so feature maps keep 4x the resolution"
        )
    if spec.in_channels != 3:
        return f"conv1 takes {spec.in_channels} input channel(s) instead of 3"
    return ""
