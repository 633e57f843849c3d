"""The Python API in four calls: pretrain, load, embed, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import Config, apply_overrides, config_from_dict
from selfsup.errors import SelfsupError
from selfsup.export import load
from selfsup.models import Encoder


def make_config(**overrides: Any) -> Config:
    """A Config from dotted keys written with double underscores or dots in a dict.

    `make_config(data__source="cifar10:/data", train__epochs=10)` or
    `make_config(**{"data.source": "cifar10:/data"})`.
    """
    return apply_overrides(Config(), {k.replace("__", "."): v for k, v in overrides.items()})


def pretrain(
    config: Config | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    **overrides: Any,
):
    """Train an encoder; return a `RunResult` (run_dir, encoder, evaluation)."""
    from selfsup.train import pretrain as _pretrain

    cfg = config or Config()
    if overrides:
        cfg = apply_overrides(cfg, {k.replace("__", "."): v for k, v in overrides.items()})
    return _pretrain(cfg, out, resume=resume, overwrite=overwrite)


def run_config(run: str | Path) -> Config:
    """The resolved config a run was trained with."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise SelfsupError(f"{run} is not a run directory (no config.json)")
    return config_from_dict(json.loads(path.read_text())["config"])


@torch.no_grad()
def embed(
    encoder: Encoder | str | Path,
    images: torch.Tensor | np.ndarray,
    *,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Embeddings (N, D) float32 of uint8 images (N, C, H, W) or (N, H, W[, C]) arrays."""
    from selfsup.evaluate.features import extract_features

    if not isinstance(encoder, Encoder):
        encoder = load(encoder, device=device)
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise SelfsupError(f"embed expects uint8 images, got {x.dtype}; scale to 0..255 first")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() == 4 and x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    c = encoder.spec.in_channels
    if x.dim() != 4 or x.shape[1] != c:
        raise SelfsupError(
            f"embed expects images shaped (N, {c}, H, W) for this encoder, got {tuple(x.shape)}"
        )
    encoder.to(device)
    return extract_features(encoder, x.contiguous(), batch_size=batch_size, device=device).numpy()


def evaluate(
    run: str | Path,
    protocols: tuple[str, ...] | str = ("knn", "linear", "geometry"),
    *,
    data: str | None = None,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Evaluate a run's encoder beside the baselines; write and return the figures."""
    from selfsup.data import load_data
    from selfsup.evaluate.run import evaluate_encoder_with_baselines

    cfg = run_config(run)
    if isinstance(protocols, str):
        protocols = tuple(p.strip() for p in protocols.split(",") if p.strip())
    if data is not None:
        cfg.data.source = data
    encoder = load(run, device=device)
    splits = load_data(
        cfg.data.source,
        download=cfg.data.download,
        skip_corrupt=cfg.data.skip_corrupt,
        image_size=cfg.data.image_size or encoder.spec.image_size,
    )
    results = evaluate_encoder_with_baselines(encoder, splits, cfg, device, protocols)
    (Path(run) / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    return results
