"""A held-out split carved from train before pretraining, and recorded in the run directory.

A labelled source without a test split (an image folder with only class folders, an npy file
without test arrays) would otherwise be evaluated on images the encoder trained on, and an
image-caption source (a captions CSV or folder) would be scored on the very pairs CLIP learned
to match. The run carves 20 % (stratified by label when there are labels, seed 0) before
training, trains on the rest, and writes the held-out positions to `heldout.json`, so that
`selfsup evaluate` and the report use the same queries.

Evaluation data from another source (`eval.data`, `selfsup evaluate --data`) gets the same
carve (`carve_evaluation_split`), recorded nowhere because it is a pure function of the data:
the queries are never in the bank, and on the run's own training source it is exactly the
split in `heldout.json`. Fewer than MIN_SAMPLES samples are not split: the protocols that need
held-out queries are then refused, with the reason (`evaluate.suite.evaluation_data`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from selfsup.data.split import DataSplits, Split, holdout_positions
from selfsup.errors import SelfsupError

HELDOUT_FILE = "heldout.json"
FRACTION = 0.2
SEED = 0
MIN_SAMPLES = 10  # fewer are not split: 20 % would leave a query or two


def scored_against_the_bank(data: Split) -> bool:
    """Whether protocols score this data's samples in ways that training on them flatters:
    labels or known factors (a query would find itself in the kNN bank) or captions (CLIP
    learned to match exactly these pairs). Unlabelled images, sentences and series are not
    split."""
    return bool(data.serves & {"label", "captions", "factors"})


def needs_heldout(splits: DataSplits) -> bool:
    """A labelled (or captioned) train split with no test split: evaluation needs queries of
    its own."""
    return (
        splits.test is None
        and scored_against_the_bank(splits.train)
        and len(splits.train) >= MIN_SAMPLES
    )


def carve_heldout(splits: DataSplits) -> tuple[DataSplits, dict[str, Any] | None]:
    """(splits with a held-out test split, the record to save) or (splits, None) if not needed."""
    if not needs_heldout(splits):
        return splits, None
    n = len(splits.train)
    _, test_idx = holdout_positions(n, splits.train.labels, fraction=FRACTION, seed=SEED)
    record = {"fraction": FRACTION, "seed": SEED, "count": n, "test": sorted(test_idx.tolist())}
    return apply_heldout(splits, record), record


def carve_evaluation_split(splits: DataSplits) -> DataSplits:
    """Evaluation data without a test split, split as a training run splits it (20 %, stratified
    by label, seed 0): the bank is the rest. Splits that need none (or are too small) come back
    as they are."""
    carved, record = carve_heldout(splits)
    if record is None:
        return splits
    held, total = len(record["test"]), record["count"]
    return DataSplits(
        carved.train,
        carved.test,
        test_from=(
            f"{held} of its {total} samples held out (20 %, stratified, seed 0, as a training "
            f"run carves them); the bank is the other {total - held}"
        ),
    )


def apply_heldout(splits: DataSplits, record: dict[str, Any]) -> DataSplits:
    """Split train into train and the recorded held-out positions."""
    n = len(splits.train)
    if record.get("count") != n:
        raise SelfsupError(
            f"the run's {HELDOUT_FILE} was made for {record.get('count')} training samples but "
            f"the data now has {n}; evaluate with the data the run trained on"
        )
    test = torch.zeros(n, dtype=torch.bool)
    test[torch.tensor(record["test"], dtype=torch.long)] = True
    return DataSplits(
        train=splits.train.subset(torch.nonzero(~test).squeeze(1)),
        test=splits.train.subset(torch.nonzero(test).squeeze(1)),
        test_from=(
            f"{len(record['test'])} samples held out of train before training ({HELDOUT_FILE})"
        ),
    )


def save_heldout(run: Path, record: dict[str, Any] | None) -> None:
    if record is not None:
        (run / HELDOUT_FILE).write_text(json.dumps(record) + "\n")


def load_heldout(run: Path) -> dict[str, Any] | None:
    path = run / HELDOUT_FILE
    return json.loads(path.read_text()) if path.is_file() else None
