"""The exported encoder: safetensors weights plus a JSON spec with its kind, loadable without
training code. Text encoders also write their tokenizer and model config (`text_encoder/`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from selfsup.errors import SelfsupError
from selfsup.models.registry import encoder_class, spec_class
from selfsup.onnx_encoder import onnx_target

WEIGHTS = "encoder.safetensors"
SPEC = "encoder.json"
FORMAT = "selfsup-encoder/2"  # /1 had no "kind": every such encoder is an image encoder


def save_encoder(
    encoder: Any, directory: str | Path, *, exported: str | None = None, step: int | None = None
) -> Path:
    """Write `encoder.safetensors`, `encoder.json` (+ the kind's assets) into `directory`.

    `exported` says which of the method's networks this is (DINO: its teacher backbone) and
    `step` the training step it comes from; both are recorded in encoder.json when given."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(encoder, str(directory / WEIGHTS))  # copes with shared (tied) tensors
    if hasattr(encoder, "save_assets"):
        encoder.save_assets(directory)
    meta = {
        "format": FORMAT,
        "kind": encoder.kind,
        "out_dim": encoder.out_dim,
        "spec": encoder.spec.to_dict(),
    }
    if exported is not None:
        meta["exported"] = exported
    if step is not None:
        meta["step"] = step
    (directory / SPEC).write_text(json.dumps(meta, indent=2) + "\n")
    return directory / WEIGHTS


def load(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """Load the torch encoder from a run directory (or a folder holding encoder.json + weights);
    `selfsup.load` (`selfsup.serving`) also reads ONNX exports.

    The encoder is returned in eval mode; `encoder.preprocess(raw)` turns images or sentences
    into its input, `encoder(x)` gives pooled features. Encoders exported before kinds existed
    (format /1) load as image encoders.
    """
    path = Path(path)
    if not path.exists():
        raise SelfsupError(
            f"{path} does not exist; pass a run directory made by `selfsup pretrain`"
        )
    if onnx_target(path):
        raise SelfsupError(
            f"{path} is an ONNX export, which `selfsup.load` and `selfsup.embed` serve; "
            "this needs the run (or its encoder folder) with the torch encoder"
        )
    folder = path if path.is_dir() else path.parent
    if not (folder / SPEC).is_file() or not (folder / WEIGHTS).is_file():
        raise SelfsupError(
            f"{folder} has no exported encoder ({SPEC} + {WEIGHTS}); was the run finished? "
            "An unfinished run can be continued with `selfsup pretrain --resume --out RUN`"
        )
    meta = json.loads((folder / SPEC).read_text())
    kind = meta.get("kind", "image")
    spec = spec_class(kind).from_dict(meta.get("spec", meta))
    cls = encoder_class(kind)
    encoder = cls.from_assets(spec, folder) if hasattr(cls, "from_assets") else cls(spec)
    load_model(encoder, str(folder / WEIGHTS))
    return encoder.to(device).eval()
