"""The data of a run, as every command sees it: its splits with the recorded held-out split
applied, its evaluation data (`eval.data` or its own), and the protocols it evaluates."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from selfsup.config import Config, config_from_dict
from selfsup.data import load_data
from selfsup.data.heldout import FRACTION, SEED, apply_heldout, load_heldout
from selfsup.data.shards import check_heldout_record
from selfsup.data.split import DataSplits, StreamedSplit, holdout_positions
from selfsup.errors import SelfsupError
from selfsup.evaluate.registry import PROTOCOLS, parse_protocols
from selfsup.evaluate.suite import EvalData, evaluation_data
from selfsup.modalities import Modality


def run_config(run: str | Path) -> Config:
    """The resolved config a run was trained with."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise SelfsupError(f"{run} is not a run directory (no config.json)")
    return config_from_dict(json.loads(path.read_text())["config"])


def load_run_splits(cfg: Config, run: Path | None, *, source: str | None = None) -> DataSplits:
    """The data a run trains and evaluates on, with its recorded held-out split applied (also
    when `source` names the run's own training source again)."""
    splits = load_data(dataclasses.replace(cfg.data, source=source or cfg.data.source))
    own = source is None or source == cfg.data.source
    record = load_heldout(run) if run is not None and own else None
    if record is not None and "rule" in record:  # a streamed set holds out by its own rule
        check_heldout_record(splits.train, record)
        return splits
    return apply_heldout(splits, record) if record is not None else splits


def run_evaluation_data(cfg: Config, splits: DataSplits) -> EvalData:
    """The evaluation data of a run: `eval.data` when set (split 80/20 when it has no test
    split, as training splits its data), else its own (held-out) splits."""
    if cfg.eval.data and cfg.eval.data != cfg.data.source:
        return evaluation_data(_bounded(load_data(cfg.eval.data)), cfg.eval.data, own=False)
    return evaluation_data(_bounded(splits), cfg.data.source)


def _bounded(splits: DataSplits) -> DataSplits:
    """A streamed train split (shards) is evaluated through its bank: the first
    data.eval_samples training samples, decoded in memory."""
    if isinstance(splits.train, StreamedSplit):
        return DataSplits(splits.train.bank(), splits.test, splits.test_from)
    return splits


def requested_protocols(
    cfg: Config, modality: Modality, method_protocols: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """eval.protocols, or when unset the method's own (`Method.protocols`) or else the
    modality's defaults; unknown names are an error, and each protocol's `preflight` (its
    reference files are there) runs now, before any data is decoded."""
    if cfg.eval.protocols is None:
        names = method_protocols or modality.default_protocols
    else:
        names = parse_protocols(cfg.eval.protocols)
    for name in names:
        if PROTOCOLS[name].preflight is not None:
            PROTOCOLS[name].preflight()
    return names


def with_source_b(cfg: Config, train: Any, eval_data: EvalData) -> tuple[Any, EvalData]:
    """The training split and the evaluation data with `data.source_b`'s images attached as
    their `unpaired` set (CycleGAN's domain B): B's training images to the training split, B's
    held-out images (its test split, else a seeded 20 % of it, as a training run carves) to
    the queries. B must hold images of A's channels and size; A's rows are not touched."""
    from selfsup.data.images import ImageData

    what = f"--data-b {cfg.data.source_b}"
    splits = load_data(dataclasses.replace(cfg.data, source=cfg.data.source_b))
    if not isinstance(splits.train, ImageData) or not isinstance(train, ImageData):
        raise SelfsupError(
            f"{what}: the two sources of a translation must both be images held in memory or "
            "a store (folder, npy, digits, store:DIR, ...), not streamed shards or other data"
        )
    if splits.train.images.shape[1:] != train.images.shape[1:]:
        a, b = (tuple(x.images.shape[1:]) for x in (train, splits.train))
        raise SelfsupError(
            f"{what}: its images are {b} (channels, height, width) and those of --data "
            f"{cfg.data.source} are {a}; the two domains must match: give both the same size "
            "with --image-size N (folders), or write B with A's channels"
        )
    b_train, b_test = splits.train, splits.test
    if b_test is None:
        kept, held = holdout_positions(len(b_train), b_train.labels, FRACTION, SEED)
        b_train, b_test = b_train.subset(kept), b_train.subset(held)
    queries = dataclasses.replace(eval_data.queries, unpaired=b_test)
    return dataclasses.replace(train, unpaired=b_train), dataclasses.replace(
        eval_data, queries=queries
    )
