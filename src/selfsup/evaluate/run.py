"""Evaluation of a trained encoder the way a run reports it: beside a random encoder and pixels."""

from __future__ import annotations

from typing import Any

import torch

from selfsup.config import Config
from selfsup.data import DataSplits, ImageData
from selfsup.data.registry import holdout
from selfsup.evaluate.protocols import evaluate_encoder, evaluate_features, raw_pixel_features
from selfsup.models import Encoder

ONLINE_PROTOCOLS = ("knn", "geometry")


def evaluation_split(splits: DataSplits) -> tuple[ImageData, ImageData] | None:
    """(bank, queries) for evaluation: the test split, else a held-out 20 % of labelled train."""
    if splits.test is not None:
        return splits.train, splits.test
    if splits.train.labels is not None:
        held = holdout(splits.train, fraction=0.2, seed=0)
        return held.train, held.test
    return splits.train, splits.train  # unlabelled: geometry only


def _protocols(requested: tuple[str, ...], labelled: bool) -> tuple[str, ...]:
    return tuple(p for p in requested if labelled or p == "geometry")


def online_evaluation(
    method: Any, data: tuple[ImageData, ImageData], cfg: Config, device: torch.device
) -> dict[str, float]:
    """The periodic check during training: kNN on clean features plus the collapse monitor."""
    bank, queries = data
    protocols = _protocols(ONLINE_PROTOCOLS, bank.labels is not None)
    return evaluate_encoder(
        method.encoder,
        bank.images,
        bank.labels,
        queries.images,
        queries.labels,
        protocols,
        augment=method.augment,
        device=device,
        knn_k=cfg.eval.knn_k,
        knn_t=cfg.eval.knn_t,
    )


def evaluate_encoder_with_baselines(
    encoder: Encoder,
    splits: DataSplits,
    cfg: Config,
    device: torch.device | str = "cpu",
    protocols: tuple[str, ...] | None = None,
) -> dict[str, dict[str, float]]:
    """Figures for the learned encoder, a random encoder of the same architecture, and pixels."""
    data = evaluation_split(splits)
    assert data is not None
    bank, queries = data
    labelled = bank.labels is not None
    protocols = _protocols(protocols or cfg.eval.protocols, labelled)
    from selfsup.train import augment_for  # the run's own recipe; train imports this module

    augment = augment_for(cfg, encoder.spec)
    kw = dict(augment=augment, device=device, knn_k=cfg.eval.knn_k, knn_t=cfg.eval.knn_t)
    results = {
        "selfsup": evaluate_encoder(
            encoder, bank.images, bank.labels, queries.images, queries.labels, protocols, **kw
        )
    }
    if cfg.eval.baselines:
        with torch.random.fork_rng():
            torch.manual_seed(cfg.train.seed)
            random_encoder = Encoder(encoder.spec).to(device)
        results["random"] = evaluate_encoder(
            random_encoder,
            bank.images,
            bank.labels,
            queries.images,
            queries.labels,
            protocols,
            **kw,
        )
        pixel_protocols = tuple(p for p in protocols if p in ("knn", "linear"))
        if pixel_protocols:
            results["raw_pixels"] = evaluate_features(
                raw_pixel_features(bank.images),
                bank.labels,
                raw_pixel_features(queries.images, reference=bank.images),
                queries.labels,
                pixel_protocols,
                knn_k=cfg.eval.knn_k,
                knn_t=cfg.eval.knn_t,
            )
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per encoder, one column per figure."""
    keys = list(dict.fromkeys(k for row in results.values() for k in row))
    widths = [max(len(k), 9) + 2 for k in keys]
    first = max(len(name) for name in results) + 2
    lines = ["".ljust(first) + "".join(k.rjust(w) for k, w in zip(keys, widths, strict=True))]
    for name, row in results.items():
        cells = []
        for k, w in zip(keys, widths, strict=True):
            v = row.get(k)
            if v is None:
                cells.append("-".rjust(w))
            elif k.endswith("top1"):
                cells.append(f"{100 * v:.2f} %".rjust(w))
            else:
                cells.append(f"{v:.4g}".rjust(w))
        lines.append(name.ljust(first) + "".join(cells))
    return "\n".join(lines)
