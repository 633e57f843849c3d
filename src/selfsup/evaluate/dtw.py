"""The `dtw_1nn` baseline row: 1-NN by full-window dynamic time warping on the raw series (aeon's
implementation; several channels: its dependent DTW), beside the random encoder and the raw
signal. Each series is z-normalised per channel over its valid steps (as `raw_signal`) and
compared at its own length, never with its padding."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from selfsup.config import Config
from selfsup.devices import numba_without_openmp
from selfsup.errors import SelfsupError
from selfsup.evaluate.ties import label_hits
from selfsup.modalities.raw import sample_rows, znormalised_series

if TYPE_CHECKING:
    from selfsup.data.series import SeriesData

DTW_FIGURE = "dtw_1nn_top1"
MIN_QUERIES = 100  # queries kept before the bank is sampled, when the cost is over eval.dtw_limit


def valid_lengths(data: SeriesData) -> Tensor:
    """(N,) int64: each series' valid steps (padding is at the end)."""
    if data.mask is None:
        return torch.full((len(data),), data.length, dtype=torch.long)
    return data.mask.sum(1).long()


def _series_list(data: SeriesData) -> list[np.ndarray]:
    """Each z-normalised series as a float64 (C, length) array, cut to its valid length."""
    x = znormalised_series(data.series, data.mask).double().numpy()
    return [np.ascontiguousarray(x[i, :, :n]) for i, n in enumerate(valid_lengths(data).tolist())]


def dtw_cost(bank: SeriesData, queries: SeriesData) -> int:
    """Cells of the DTW matrices over every (bank, query) pair, times the channels: the sum of
    len(b) x len(q) x C, what DTW 1-NN costs (`eval.dtw_limit` bounds it)."""
    return int(valid_lengths(bank).sum()) * int(valid_lengths(queries).sum()) * bank.num_channels


def dtw_1nn_scores(bank: SeriesData, queries: SeriesData, num_classes: int) -> Tensor:
    """(Q, num_classes): minus each query's smallest DTW distance to a bank series of each class
    (-inf for a class absent from the bank). Its argmax is the 1-NN prediction; a nearest
    distance shared with a series of another class is a tie that `label_hits` counts against."""
    from aeon.distances import dtw_pairwise_distance  # lazily: numba compiles on first use

    numba_without_openmp()
    if bank.labels is None or len(bank) == 0:
        raise SelfsupError("DTW 1-NN needs a labelled bank of at least one series")
    distances = dtw_pairwise_distance(
        _series_list(queries), _series_list(bank), n_jobs=torch.get_num_threads()
    )
    distances = torch.from_numpy(np.asarray(distances, dtype=np.float64))
    scores = torch.full((len(queries), num_classes), float("-inf"), dtype=torch.float64)
    labels = bank.labels.long()
    for c in labels.unique().tolist():
        scores[:, c] = -distances[:, labels == c].min(1).values
    return scores


def bounded(
    bank: SeriesData, queries: SeriesData, limit: int, seed: int = 0
) -> tuple[SeriesData, SeriesData, str | None]:
    """(bank, queries, line): both as they are when their `dtw_cost` is within `limit`; else a
    seeded sample stratified by class, of the queries first (the 1-NN accuracy over the whole
    bank stays an unbiased estimate), down to MIN_QUERIES, then of the bank. `line` says what
    was sampled (None when nothing)."""
    said = []
    if dtw_cost(bank, queries) > limit:
        per_query = dtw_cost(bank, queries) / len(queries)
        keep = min(len(queries), max(MIN_QUERIES, int(limit // per_query)))
        if keep < len(queries):
            said.append(f"queries: a seeded sample of {keep:,} of its {len(queries):,} rows")
            queries = queries.subset(sample_rows(len(queries), keep, queries.labels, seed))
    if dtw_cost(bank, queries) > limit:
        per_row = dtw_cost(bank, queries) / len(bank)
        keep = max(1, min(len(bank), int(limit // per_row)))
        said.append(f"bank: a seeded sample of {keep:,} of its {len(bank):,} rows")
        bank = bank.subset(sample_rows(len(bank), keep, bank.labels, seed))
    if not said:
        return bank, queries, None
    line = ", ".join(said) + f", stratified by class (eval.dtw_limit {limit:.3g} DTW cells)"
    return bank, queries, line


def dtw_1nn_row(
    bank: SeriesData, queries: SeriesData, limit: int
) -> tuple[dict[str, float], str | None]:
    """The `dtw_1nn` row ({"dtw_1nn_top1": accuracy}) of a labelled bank and queries, within
    the cost `limit`, and the line saying what was sampled (None when nothing)."""
    if bank.labels is None or queries.labels is None:
        raise SelfsupError("DTW 1-NN needs labels on the bank and on the queries")
    bank, queries, said = bounded(bank, queries, limit)
    num_classes = int(max(bank.labels.max(), queries.labels.max())) + 1
    scores = dtw_1nn_scores(bank, queries, num_classes)
    accuracy = label_hits(scores, queries.labels).float().mean().item()
    return {DTW_FIGURE: accuracy}, said


def dtw_baseline(
    bank: SeriesData, queries: SeriesData, cfg: Config
) -> tuple[dict[str, float], str | None]:
    """The `dtw_1nn` baseline (`evaluate.baselines`) within `eval.dtw_limit`; none at 0."""
    if cfg.eval.dtw_limit == 0:
        return {}, None
    return dtw_1nn_row(bank, queries, cfg.eval.dtw_limit)
