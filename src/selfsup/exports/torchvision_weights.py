"""`--format torchvision`: a ResNet image encoder as the state dict (`model.pth`) that
`torchvision.models.resnet18()` (34, 50) loads with no missing or unexpected key once its
classifier is `fc = torch.nn.Identity()` (our encoder has none: it gives pooled features).

Our ResNets are torchvision's, so the names are the same. A CIFAR stem (3x3 stride-1 conv1, no
max-pool) or another channel count is exported too, and the model card and a warning give the
two lines that rebuild that stem on torchvision's model before loading: the weights are those
of exactly that model, nothing is approximated. ViTs are refused (torchvision's
VisionTransformer names and splits its parameters otherwise): `--format timm` takes them."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import SelfsupError
from selfsup.exports.formats import ExportOptions
from selfsup.exports.image_weights import (
    OTHER_FORMATS,
    RESNETS,
    backbone_state,
    check_image_encoder,
    no_equivalent,
    stem_difference,
    stem_lines,
)

WEIGHTS = "model.pth"


def check(encoder: Any, options: ExportOptions) -> None:
    check_image_encoder(encoder, "torchvision")
    backbone = encoder.spec.backbone
    if backbone.startswith("vit-"):
        raise SelfsupError(
            f"--format torchvision exports ResNets ({', '.join(RESNETS)}); this encoder's "
            f"backbone {backbone!r} is a timm ViT: export it with --format timm, or {OTHER_FORMATS}"
        )
    if backbone not in RESNETS:
        raise no_equivalent(encoder, "torchvision", f"ResNets ({', '.join(RESNETS)})")


def paths(folder: Path, encoder: Any, options: ExportOptions) -> list[Path]:
    return [folder / WEIGHTS]


def write(encoder: Any, folder: Path, options: ExportOptions) -> list[Path]:
    torch.save(backbone_state(encoder), folder / WEIGHTS)
    difference = stem_difference(encoder.spec)
    if difference:
        warnings.warn(
            f"this {encoder.spec.backbone} differs from torchvision's in its stem: {difference}. "
            "Build the model as README.md says before loading: "
            + "; ".join(
                [f"model = torchvision.models.{encoder.spec.backbone}()", *stem_lines(encoder.spec)]
            ),
            stacklevel=2,
        )
    return [folder / WEIGHTS]


def load_snippet(folder: str, encoder: Any) -> str:
    """How to load this export, for the model card: the model built as ours, then the weights."""
    spec = encoder.spec
    return "\n".join(
        [
            "import torch",
            "import torchvision",
            "",
            f"model = torchvision.models.{spec.backbone}()",
            *stem_lines(spec),
            "model.fc = torch.nn.Identity()  # no classifier: the model gives pooled features",
            f'state = torch.load("{folder}/{WEIGHTS}", weights_only=True)',
            "model.load_state_dict(state)  # strict: no missing or unexpected key",
            "model.eval()",
            f"mean = torch.tensor({list(spec.mean)}).view(1, -1, 1, 1)",
            f"std = torch.tensor({list(spec.std)}).view(1, -1, 1, 1)",
            "features = model((images - mean) / std)  # images: float (N, C, H, W) in [0, 1]",
        ]
    )


def card_notes(encoder: Any) -> list[str]:
    """What the model card says before the snippet: the classifier, the stem, the input."""
    spec = encoder.spec
    notes = [
        f"`model.pth` is the state dict of torchvision's `{spec.backbone}` without its "
        "classifier: set `model.fc = torch.nn.Identity()` and the model gives the "
        f"{encoder.out_dim} pooled features our encoder gives."
    ]
    difference = stem_difference(spec)
    if difference:
        notes.append(
            f"**Architecture difference**: this {spec.backbone} has {difference}. Build "
            "torchvision's model with the line(s) below before loading; the weights are those "
            "of exactly that model (torchvision's own stem would not fit them)."
        )
    notes.append(
        "Input: images in [0, 1], normalised by the mean and std below (our encoder did this "
        f"inside its forward), {spec.in_channels} channel(s), trained at "
        f"{spec.height_width[0]}x{spec.height_width[1]}."
    )
    return notes
