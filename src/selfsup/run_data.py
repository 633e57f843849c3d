"""The data of a run, as every command sees it: its splits with the recorded held-out split
applied, its evaluation data (`eval.data` or its own), and the protocols it evaluates."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from selfsup.config import Config, config_from_dict
from selfsup.data import load_data
from selfsup.data.heldout import apply_heldout, load_heldout
from selfsup.data.shards import check_heldout_record
from selfsup.data.split import DataSplits, StreamedSplit
from selfsup.errors import SelfsupError
from selfsup.evaluate.registry import parse_protocols
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


def requested_protocols(cfg: Config, modality: Modality) -> tuple[str, ...]:
    """eval.protocols, or the modality's defaults when unset; unknown names are an error."""
    if cfg.eval.protocols is None:
        return modality.default_protocols
    return parse_protocols(cfg.eval.protocols)
