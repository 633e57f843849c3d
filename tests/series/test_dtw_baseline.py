"""The `dtw_1nn` baseline row of the series modality: full-window DTW 1-NN on the z-normalised raw
series (aeon), each series at its valid length, ties against the query, its cost bounded by
`eval.dtw_limit` with a seeded stratified sample that eval.json names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.config import Config
from selfsup.data.series import SeriesData
from selfsup.errors import SelfsupError
from selfsup.evaluate.dtw import bounded, dtw_1nn_row, dtw_1nn_scores, dtw_cost
from selfsup.evaluate.suite import EvalData, evaluate_with_baselines, format_table
from selfsup.modalities import get_modality
from selfsup.models import build_encoder
from selfsup.models.series import series_spec
from selfsup.report import _evaluation_html


def bumps(centres: list[list[int]], length: int = 40) -> torch.Tensor:
    """(N, 1, length): each series the sum of narrow bumps at its `centres`."""
    t = torch.arange(length, dtype=torch.float32)
    return torch.stack([sum(torch.exp(-0.5 * ((t - c) / 1.5) ** 2) for c in cs) for cs in centres])[
        :, None
    ]


def split(x: torch.Tensor, labels: list[int], mask: torch.Tensor | None = None) -> SeriesData:
    return SeriesData(x, mask, torch.tensor(labels), ["one", "two"], "test")


def dtw_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Plain full-window DTW on (C, n) and (C, m), squared Euclidean cost over channels."""
    n, m = a.shape[1], b.shape[1]
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = float(((a[:, i - 1] - b[:, j - 1]) ** 2).sum())
            acc[i, j] = cost + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return acc[n, m]


def znorm(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(1, keepdims=True)) / np.maximum(a.std(1, keepdims=True), 1e-8)


def test_dtw_finds_a_shifted_copy_where_euclidean_does_not():
    # class 0: one bump; class 1: two bumps. The query is one bump, shifted next to class 1's.
    bank = split(bumps([[8], [22, 30]]), [0, 1])
    queries = split(bumps([[27]]), [0])
    flat = lambda d: get_modality("series").raw_features(d, d)[1]  # noqa: E731
    euclid = torch.cdist(flat(queries), flat(bank))
    assert int(euclid.argmin()) == 1  # the raw signal's nearest series is of the wrong class
    row, said = dtw_1nn_row(bank, queries, limit=10**9)
    assert row == {"dtw_1nn_top1": 1.0} and said is None


def test_a_tie_with_another_class_counts_against_the_query():
    same = bumps([[10], [10], [12, 28]])  # one bump twice (DTW: equal to any one bump), two
    queries = split(bumps([[10], [12, 28]]), [0, 1])
    tied = split(same, [0, 1, 1])  # the first query's nearest two, identical, disagree
    assert dtw_1nn_row(tied, queries, 10**9)[0]["dtw_1nn_top1"] == 0.5
    agreed = split(same, [0, 0, 1])  # a tie within the true class is a hit
    assert dtw_1nn_row(agreed, queries, 10**9)[0]["dtw_1nn_top1"] == 1.0


def test_unequal_lengths_are_compared_without_their_padding():
    gen = torch.Generator().manual_seed(0)
    lengths = [12, 9, 15, 7, 11]
    x = torch.zeros(5, 2, 15)
    mask = torch.zeros(5, 15, dtype=torch.bool)
    for i, n in enumerate(lengths):
        x[i, :, :n] = torch.randn(2, n, generator=gen) * 3 + 1
        mask[i, :n] = True
    bank = SeriesData(x[:3], mask[:3], torch.tensor([0, 1, 1]), None, "bank")
    queries = SeriesData(x[3:], mask[3:], torch.tensor([1, 0]), None, "queries")
    scores = dtw_1nn_scores(bank, queries, 2)
    parts = [znorm(x[i, :, :n].double().numpy()) for i, n in enumerate(lengths)]
    ref = np.array([[dtw_reference(parts[3 + q], parts[b]) for b in range(3)] for q in range(2)])
    want = np.stack([-ref[:, [0]].min(1), -ref[:, [1, 2]].min(1)], 1)
    np.testing.assert_allclose(scores.numpy(), want, rtol=1e-5)  # float32 z-norm
    assert dtw_cost(bank, queries) == (12 + 9 + 15) * (7 + 11) * 2


def test_the_cost_bound_samples_queries_then_the_bank_and_says_so():
    gen = torch.Generator().manual_seed(1)
    bank = split(torch.randn(40, 1, 20, generator=gen), [0, 1] * 20)
    queries = split(torch.randn(300, 1, 20, generator=gen), [0, 1, 1] * 100)
    full = dtw_cost(bank, queries)
    same = bounded(bank, queries, full)
    assert same[0] is bank and same[1] is queries and same[2] is None
    b, q, said = bounded(bank, queries, full // 2)  # queries only: 150 of 300, by class
    assert len(b) == 40 and len(q) == 150 and int(q.labels.sum()) == 100
    assert said.startswith("queries: a seeded sample of 150 of its 300 rows")
    assert "eval.dtw_limit" in said and "bank" not in said
    b, q, said = bounded(bank, queries, full // 30)  # queries down to 100, then the bank
    assert len(q) == 100 and len(b) == 40 * 300 // 30 // 100
    assert "bank: a seeded sample of 4 of its 40 rows" in said
    again = bounded(bank, queries, full // 30)
    assert torch.equal(again[1].series, q.series) and torch.equal(again[0].series, b.series)


def test_the_row_in_eval_json_the_console_table_and_the_report(capsys):
    gen = torch.Generator().manual_seed(2)
    x = bumps([[int(c)] for c in torch.randint(5, 35, (60,), generator=gen)])
    labels = [0, 1] * 30
    x[1::2] *= -1  # class 1: dips
    data = EvalData(split(x[:40], labels[:40]), split(x[40:], labels[40:]), "test split")
    modality = get_modality("series")
    cfg = Config()
    cfg.eval.knn_k = 5
    encoder = build_encoder(series_spec(1, 40))
    results = evaluate_with_baselines(encoder, modality, data, cfg, ("knn",))
    assert results["dtw_1nn"] == {"dtw_1nn_top1": 1.0}
    assert "dtw_1nn_top1 (%)" in format_table(results)
    html = _evaluation_html(results, {"data": {"source": "ucr:GunPoint"}})
    assert modality.row_titles["dtw_1nn"] in html
    # half the cost: 20 queries are under MIN_QUERIES, so half the bank
    cfg.eval.dtw_limit = (40 * 40) * (20 * 40) // 2
    results = evaluate_with_baselines(encoder, modality, data, cfg, ("knn",))
    assert results["raw_sample"].startswith("dtw_1nn: bank: a seeded sample of 20 of its 40")
    assert "sampled: dtw_1nn: bank" in format_table(results)
    cfg.eval.dtw_limit = 0  # no row
    assert "dtw_1nn" not in evaluate_with_baselines(encoder, modality, data, cfg, ("knn",))
    cfg.eval.dtw_limit = 10**10  # no classification asked: no row
    assert "dtw_1nn" not in evaluate_with_baselines(encoder, modality, data, cfg, ("geometry",))
    cfg.eval.baselines = False
    assert "dtw_1nn" not in evaluate_with_baselines(encoder, modality, data, cfg, ("knn",))


def test_a_negative_limit_is_refused():
    from selfsup import make_config

    with pytest.raises(SelfsupError, match="dtw_limit"):
        make_config(**{"data.source": "ucr:GunPoint", "eval.dtw_limit": -1})


def test_every_modality_names_registered_baselines_with_a_title():
    from selfsup.evaluate.baselines import BASELINES
    from selfsup.modalities import MODALITIES

    for name in MODALITIES:
        modality = get_modality(name)
        for row in modality.extra_baselines:
            assert row in BASELINES and row in modality.row_titles, (name, row)
    assert get_modality("series").extra_baselines == ("dtw_1nn",)


def test_dtw_leaves_numba_on_its_own_threads_not_openmp():
    """aeon's parallel DTW on numba's OpenMP layer left threads that made every later torch step
    in the process 20-70x slower (the series tests slowed every test after them)."""
    import numba

    gen = torch.Generator().manual_seed(0)
    x, mask = torch.randn(4, 1, 10, generator=gen), torch.ones(4, 10, dtype=torch.bool)
    bank = SeriesData(x[:2], mask[:2], torch.tensor([0, 1]), None, "bank")
    dtw_1nn_scores(bank, SeriesData(x[2:], mask[2:], torch.tensor([0, 1]), None, "q"), 2)
    assert numba.threading_layer() == "workqueue"
