"""Baseline rows by name that are not features for the protocols (DTW 1-NN classifies the raw
series itself), beside the random encoder and the raw input. A modality names the ones that
apply in `Modality.extra_baselines` and their titles in `row_titles`; adding one: write its
function, add a line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from selfsup.config import Config
from selfsup.evaluate.dtw import dtw_baseline
from selfsup.evaluate.registry import PROTOCOLS


@dataclass(frozen=True)
class Baseline:
    """A named baseline row: what it needs from the data (as a protocol's `needs`), one line of
    help, and `run(bank, queries, cfg) -> (figures, line saying what was sampled or None)`."""

    name: str
    needs: frozenset[str]
    summary: str
    run: Callable[[Any, Any, Config], tuple[dict[str, float], str | None]]


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline(
            "dtw_1nn",
            frozenset({"label"}),
            "1-NN by full-window DTW on the z-normalised raw series (eval.dtw_limit)",
            dtw_baseline,
        ),
    )
}


def run_baselines(
    names: Sequence[str], data: Any, cfg: Config, protocols: Sequence[str]
) -> tuple[dict[str, dict[str, float]], str | None]:
    """The rows of the baselines `names` on `data` (a `suite.EvalData`) whose needs the data
    meets and one of the requested `protocols` shares (DTW 1-NN when something is classified),
    and one line saying what each sampled (None when nothing)."""
    available = data.available()
    asked = set().union(*(PROTOCOLS[p].needs for p in protocols)) if protocols else set()
    rows: dict[str, dict[str, float]] = {}
    said = []
    for name in names:
        baseline = BASELINES[name]
        if not baseline.needs <= available or not baseline.needs & asked:
            continue
        row, line = baseline.run(data.bank, data.queries, cfg)
        if row:
            rows[name] = row
        if line:
            said.append(f"{name}: {line}")
    return rows, "; ".join(said) or None
