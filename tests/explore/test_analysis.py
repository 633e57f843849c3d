"""The explorer's computations on arrays: neighbour tables, duplicates, outliers, kNN per
class, clusters, the 2-D layout and where a query lands."""

import sys

import numpy as np
import pytest
import torch

from selfsup.evaluate.knn import knn_accuracy
from selfsup.explore import analysis
from selfsup.search import normalize


def blobs(n_per, centres, spread, rng):
    x = np.concatenate([c + spread * rng.standard_normal((n_per, len(c))) for c in centres])
    return normalize(x), np.repeat(np.arange(len(centres)), n_per)


def test_drop_self_leaves_the_row_out_wherever_it_was_found():
    rows = np.array([5, 6, 7])
    found = np.array([[5, 1, 2], [1, 6, 2], [1, 2, 3]])  # first, second, absent
    sims = np.array([[1.0, 0.9, 0.8], [1.0, 0.99, 0.7], [0.9, 0.8, 0.7]], np.float32)
    ids, values = analysis.drop_self(found, sims, rows, 2)
    assert ids.tolist() == [[1, 2], [1, 2], [1, 2]]
    np.testing.assert_allclose(values, [[0.9, 0.8], [1.0, 0.7], [0.9, 0.8]])


def test_near_duplicates_are_the_planted_pairs_once_each_closest_first():
    rng = np.random.default_rng(0)
    x = normalize(rng.standard_normal((200, 16)))
    x[10] = normalize((x[3] + 1e-4 * rng.standard_normal(16))[None])[0]
    x[50] = normalize((x[40] + 3e-3 * rng.standard_normal(16))[None])[0]
    sims = x @ x.T
    order = np.argsort(-sims, axis=1)[:, :6]
    rows = np.arange(200)
    ids, values = analysis.drop_self(order, np.take_along_axis(sims, order, 1), rows, 5)
    pairs = analysis.near_duplicates(rows, ids, values, threshold=1e-3)
    assert [(a, b) for a, b, _ in pairs] == [(3, 10), (40, 50)]
    assert pairs[0][2] < pairs[1][2] < 1e-3
    close = analysis.near_duplicates(rows, ids, values, threshold=pairs[1][2] / 2)
    assert [(a, b) for a, b, _ in close] == [(3, 10)]
    assert analysis.near_duplicates(rows, ids, values, threshold=0) == []


def test_outliers_put_the_lonely_point_first():
    rng = np.random.default_rng(1)
    x, _ = blobs(50, [np.eye(8)[0] * 5, np.eye(8)[1] * 5], 0.3, rng)
    x = np.concatenate([x, normalize(np.eye(8)[5:6])])  # far from both blobs
    sims = x @ x.T
    order = np.argsort(-sims, axis=1)[:, :4]
    _, values = analysis.drop_self(order, np.take_along_axis(sims, order, 1), np.arange(len(x)), 3)
    order, distance = analysis.outliers(values)
    assert order[0] == 100 and distance[0] == pytest.approx(1 - values[100, -1])
    assert np.all(np.diff(distance) <= 0)


def test_class_accuracy_is_the_knn_protocol_split_by_class():
    rng = np.random.default_rng(2)
    centres = [rng.standard_normal(16) * 0.5 for _ in range(4)]
    bank, bank_y = blobs(60, centres, 1.5, rng)
    queries, query_y = blobs(30, centres, 1.5, rng)
    acc = analysis.class_accuracy(bank, bank_y, queries, query_y, ["a", "b", "c", "d"], k=20)
    expected = knn_accuracy(
        torch.from_numpy(bank),
        torch.from_numpy(bank_y),
        torch.from_numpy(queries),
        torch.from_numpy(query_y),
        k=20,
    )
    assert acc.overall == pytest.approx(expected)
    assert 0.3 < acc.overall < 1  # some mistakes to show
    assert acc.count.tolist() == [30] * 4
    assert np.diag(acc.confusion).tolist() == acc.correct.tolist()
    assert acc.confusion.sum(axis=1).tolist() == acc.count.tolist()


def test_a_tie_for_the_top_class_counts_as_wrong_in_the_matrix_too():
    bank = normalize(np.array([[1.0, 0.0], [1.0, 0.0]], np.float32))
    acc = analysis.class_accuracy(
        bank, np.array([0, 1]), bank[:1], np.array([0]), None, k=2, temperature=0.1
    )
    assert acc.correct.tolist() == [0, 0] and acc.confusion.tolist() == [[0, 1], [0, 0]]


def test_kmeans_finds_separated_blobs():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(3)
    x, y = blobs(40, [np.eye(6)[i] * 10 for i in range(3)], 0.2, rng)
    assert adjusted_rand_score(y, analysis.kmeans_clusters(x, 3)) == 1.0


@pytest.mark.parametrize("umap_installed", [True, False])
def test_layout_keeps_blobs_together(monkeypatch, umap_installed):
    if umap_installed:
        pytest.importorskip("umap")
    else:
        monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    rng = np.random.default_rng(4)
    x, y = blobs(40, [np.eye(10)[i] * 10 for i in range(3)], 0.5, rng)
    xy, name = analysis.layout_2d(x)
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    assert name.startswith("UMAP" if umap_installed else "t-SNE")
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).mean() > 0.95  # each point's nearest on the map: its blob


def test_a_query_lands_beside_its_nearest_mapped_samples():
    rng = np.random.default_rng(5)
    x = normalize(rng.standard_normal((50, 8)))
    xy = rng.standard_normal((50, 2)).astype(np.float32)
    assert analysis.place_query(x[7], x, xy, k=1) == pytest.approx(xy[7])
    near = np.argsort(-(x @ x[7]))[:3]
    assert analysis.place_query(x[7], x, xy, k=3) == pytest.approx(xy[near].mean(0))
