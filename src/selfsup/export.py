"""The exported encoder: safetensors weights plus a JSON spec, loadable without training code."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from selfsup.errors import SelfsupError
from selfsup.models import Encoder, EncoderSpec

WEIGHTS = "encoder.safetensors"
SPEC = "encoder.json"


def save_encoder(encoder: Encoder, directory: str | Path) -> Path:
    """Write `encoder.safetensors` and `encoder.json` into `directory`; return the weights path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    spec = encoder.spec.to_dict() | {"out_dim": encoder.out_dim, "format": "selfsup-encoder/1"}
    (directory / SPEC).write_text(json.dumps(spec, indent=2) + "\n")
    return directory / WEIGHTS


def load(path: str | Path, device: str | torch.device = "cpu") -> Encoder:
    """Load an encoder from a run directory (or a folder holding encoder.json + weights).

    The encoder takes float images in [0, 1] (or uint8) shaped (B, C, H, W) and returns
    pooled features; it is returned in eval mode.
    """
    path = Path(path)
    if not path.exists():
        raise SelfsupError(
            f"{path} does not exist; pass a run directory made by `selfsup pretrain`"
        )
    folder = path if path.is_dir() else path.parent
    if not (folder / SPEC).is_file() or not (folder / WEIGHTS).is_file():
        raise SelfsupError(
            f"{folder} has no exported encoder ({SPEC} + {WEIGHTS}); was the run finished? "
            "An unfinished run can be continued with `selfsup pretrain --resume --out RUN`"
        )
    spec = EncoderSpec.from_dict(json.loads((folder / SPEC).read_text()))
    encoder = Encoder(spec)
    encoder.load_state_dict(load_file(str(folder / WEIGHTS)))
    return encoder.to(device).eval()
