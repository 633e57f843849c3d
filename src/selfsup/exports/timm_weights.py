"""`--format timm`: a ResNet or ViT image encoder as a timm model folder (`model.safetensors` +
`config.json`, the layout timm reads from the Hugging Face hub), which
`timm.create_model("local-dir:PATH", pretrained=True)` loads with its classifier absent
(`num_classes=0`: the model gives pooled features, as our encoder).

ResNets: torchvision's parameter names are timm's, so the backbone's state dict is written as
it is; only the ImageNet stem exists in timm (a CIFAR-stem ResNet is refused: timm's `ResNet`
has no 3x3 stride-1 stem without max-pool). ViTs: our backbone is timm's `VisionTransformer`,
its `vit.` prefix dropped; `config.json`'s model_args carry its exact shape (patch, image size,
width, depth, heads), so any of our non-causal ViTs loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from selfsup.exports.formats import ExportOptions
from selfsup.exports.image_weights import (
    OTHER_FORMATS,
    RESNETS,
    backbone_state,
    check_image_encoder,
    no_equivalent,
)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def check(encoder: Any, options: ExportOptions) -> None:
    check_image_encoder(encoder, "timm")
    from selfsup.models.vit import ViTBackbone

    backbone, spec = encoder.backbone, encoder.spec
    if isinstance(backbone, ViTBackbone):
        if backbone.causal:
            raise no_equivalent(encoder, "timm", "non-causal ViTs")
        return
    if spec.backbone not in RESNETS:
        raise no_equivalent(encoder, "timm", f"ResNets ({', '.join(RESNETS)}) and ViTs")
    if spec.cifar_stem:
        from selfsup.errors import SelfsupError

        raise SelfsupError(
            f"this {spec.backbone} has the CIFAR stem (a 3x3 stride-1 conv1, no max-pool), which "
            f"timm's ResNet cannot be built with. Use --format torchvision (its model card says "
            f"the two lines that give resnet18() this stem before loading), or {OTHER_FORMATS}"
        )


def paths(folder: Path, encoder: Any, options: ExportOptions) -> list[Path]:
    return [folder / WEIGHTS, folder / CONFIG]


def write(encoder: Any, folder: Path, options: ExportOptions) -> list[Path]:
    architecture, model_args = _timm_model(encoder)
    prefix = "backbone.vit." if "patch_size" in model_args else "backbone."
    save_file(backbone_state(encoder, prefix), str(folder / WEIGHTS))
    config = timm_config(encoder, architecture, model_args)
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return [folder / WEIGHTS, folder / CONFIG]


def _timm_model(encoder: Any) -> tuple[str, dict[str, Any]]:
    """(timm architecture name, the create_model arguments that give our shape)."""
    from selfsup.models.vit import VIT_SIZES, ViTBackbone

    spec = encoder.spec
    if isinstance(encoder.backbone, ViTBackbone):
        vit = encoder.backbone.vit
        width, depth, heads = VIT_SIZES[_vit_size(spec.backbone)]
        patch = encoder.backbone.patch_size
        image = list(vit.patch_embed.img_size)
        args = {
            "patch_size": patch,
            "img_size": image if image[0] != image[1] else image[0],
            "in_chans": vit.patch_embed.proj.in_channels,
            "embed_dim": width,
            "depth": depth,
            "num_heads": heads,
            "global_pool": "token",
            "dynamic_img_size": True,  # as ours: any image size, position embeddings resampled
        }
        return _vit_name(spec.backbone, patch, image[0]), args
    args = {"in_chans": spec.in_channels} if spec.in_channels != 3 else {}
    return spec.backbone, args


def _vit_size(backbone: str) -> str:
    from selfsup.models.vit import parse_vit_name

    parsed = parse_vit_name(backbone)
    assert parsed is not None  # check() made sure it is a ViT
    return parsed[0]


def _vit_name(backbone: str, patch: int, image: int) -> str:
    """timm's registered ViT of our size (and patch and image size when one exists); `mini`, a
    size timm does not name, is given as vit_tiny_patch16_224 with its model_args."""
    import timm

    size = _vit_size(backbone)
    size = "tiny" if size == "mini" else size
    exact = f"vit_{size}_patch{patch}_{image}"
    return exact if timm.is_model(exact) else f"vit_{size}_patch16_224"


def timm_config(encoder: Any, architecture: str, model_args: dict[str, Any]) -> dict[str, Any]:
    """config.json as timm's `push_to_hf_hub` writes it: the architecture, its arguments, and
    the pretrained_cfg timm's data pipeline reads (input size, mean, std, crop)."""
    spec = encoder.spec
    h, w = spec.height_width
    vit = "patch_size" in model_args
    return {
        "architecture": architecture,
        "num_classes": 0,
        "num_features": encoder.out_dim,
        "global_pool": "token" if vit else "avg",
        "model_args": model_args,
        "pretrained_cfg": {
            "tag": "selfsup",
            "input_size": [spec.in_channels, h, w],
            "fixed_input_size": False,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": list(spec.mean),
            "std": list(spec.std),
            "num_classes": 0,
            "first_conv": "patch_embed.proj" if vit else "conv1",
            "classifier": "head" if vit else "fc",
        },
    }


def load_snippet(folder: str, encoder: Any) -> str:
    """How to load this export, for the model card."""
    return (
        "import timm\n\n"
        f'model = timm.create_model("local-dir:{folder}", pretrained=True).eval()\n'
        "config = timm.data.resolve_data_config({}, model=model)  # our mean, std, input size\n"
        "transform = timm.data.create_transform(**config)  # PIL image -> normalised tensor\n"
        "features = model(transform(image).unsqueeze(0))  # (1, num_features): no classifier"
    )


def card_notes(encoder: Any) -> list[str]:
    """What the model card says before the snippet: the classifier and the input."""
    spec = encoder.spec
    architecture, model_args = _timm_model(encoder)
    return [
        f"`model.safetensors` holds timm's `{architecture}` built with `config.json`'s "
        f"model_args {json.dumps(model_args)}, without a classifier (`num_classes=0`): the "
        f"model gives the {encoder.out_dim} pooled features our encoder gives.",
        "Input: images in [0, 1] normalised by config.json's mean and std, "
        f"{spec.in_channels} channel(s), trained at {spec.height_width[0]}x"
        f"{spec.height_width[1]}; timm's `resolve_data_config` and `create_transform` read "
        "them (resize the shorter side, centre crop, normalise).",
    ]
