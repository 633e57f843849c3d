"""What the explorer's map and panels compute from embeddings: pure functions of arrays.

Each works on unit-length rows (cosine similarity = inner product) and is tested on its own;
`data.py` runs them once per run and caches the results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.knn import knn_scores
from selfsup.evaluate.ties import label_hits
from selfsup.report import project_2d

CLUSTERS = 10  # k-means clusters that colour a map without labels


def layout_2d(vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D positions (N, 2) float32 of `vectors` and the method's name: the report's map
    (`report.project_2d`: UMAP when umap-learn is installed, else scikit-learn's t-SNE)."""
    n = len(vectors)
    if n < 3:  # neither method places fewer points; a line says as much as a map would
        return np.stack([np.arange(n), np.zeros(n)], 1).astype(np.float32), "index order"
    with warnings.catch_warnings():  # UMAP's "n_jobs overridden by random_state": seeded, as meant
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        xy, method = project_2d(vectors, seed)
    if method == "UMAP":
        name = "UMAP (umap-learn, 15 neighbours)"
    else:
        name = "t-SNE (scikit-learn; umap-learn is not installed)"
    return np.asarray(xy, dtype=np.float32), name


def kmeans_clusters(vectors: np.ndarray, k: int = CLUSTERS, seed: int = 0) -> np.ndarray:
    """(N,) cluster of each row by k-means (scikit-learn; mini-batch above 20,000 rows)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = max(1, min(k, len(vectors)))
    if len(vectors) > 20_000:
        model: Any = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(k, random_state=seed, n_init=3)
    return model.fit_predict(vectors).astype(np.int64)


def drop_self(found: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int):
    """Each query row's k neighbours with the row itself left out (found with k + 1: the row
    is among them, usually first; where it is not, as with exact duplicates ranked above it,
    the last is dropped). Returns (ids (Q, k), sims (Q, k))."""
    keep = found != rows[:, None]
    keep[keep.all(axis=1), -1] = False  # the row was not found: drop the (k+1)-th instead
    ids = np.stack([f[m][:k] for f, m in zip(found, keep, strict=True)])
    values = np.stack([s[m][:k] for s, m in zip(sims, keep, strict=True)])
    return ids.astype(np.int64), values.astype(np.float32)


def near_duplicates(
    rows: np.ndarray, knn_ids: np.ndarray, knn_sims: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """Pairs (a, b, distance) with cosine distance 1 - cos under `threshold`, closest first,
    each unordered pair once; found among each row's nearest neighbours (`knn_ids`), so a
    sample with more close copies than the table's k lists its k closest."""
    pairs: dict[tuple[int, int], float] = {}
    close = (1.0 - knn_sims) < threshold
    for q, j in zip(*np.nonzero(close), strict=True):
        a, b = int(rows[q]), int(knn_ids[q, j])
        key = (min(a, b), max(a, b))
        pairs[key] = max(0.0, float(1.0 - knn_sims[q, j]))
    return sorted(((a, b, d) for (a, b), d in pairs.items()), key=lambda p: (p[2], p[0], p[1]))


def outliers(knn_sims: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows ordered by their cosine distance to their k-th nearest neighbour
    (default the table's last), largest first, and those distances."""
    col = knn_sims.shape[1] - 1 if k is None else k - 1
    if not 0 <= col < knn_sims.shape[1]:
        raise SelfsupError(f"k must be between 1 and {knn_sims.shape[1]}, got {k}")
    distance = 1.0 - knn_sims[:, col]
    order = np.argsort(-distance, kind="stable")
    return order, distance[order]


@dataclass
class ClassAccuracy:
    """The weighted kNN classifier's results per class on the held-out samples."""

    classes: list[str]
    count: np.ndarray  # (C,) held-out samples of each class
    correct: np.ndarray  # (C,) of them classified right (a tie counts as wrong)
    confusion: np.ndarray  # (C, C): row = true class, column = predicted; diagonal = correct
    predicted: np.ndarray  # (Q,) each query's top class
    k: int
    temperature: float

    @property
    def overall(self) -> float:
        return float(self.correct.sum() / max(self.count.sum(), 1))


def class_accuracy(
    bank: np.ndarray,
    bank_labels: np.ndarray,
    queries: np.ndarray,
    query_labels: np.ndarray,
    classes: list[str] | None,
    *,
    k: int = 200,
    temperature: float = 0.1,
) -> ClassAccuracy:
    """Per-class accuracy and confusion matrix of the kNN protocol (`selfsup.evaluate.knn`:
    the weighted vote of Wu et al. 2018, ties against the query) with `bank` as its bank."""
    num = int(max(bank_labels.max(), query_labels.max())) + 1
    names = list(classes) if classes and len(classes) >= num else [str(c) for c in range(num)]
    scores = knn_scores(
        torch.from_numpy(bank),
        torch.from_numpy(bank_labels),
        torch.from_numpy(queries),
        k=k,
        temperature=temperature,
        num_classes=len(names),
    )
    truth = torch.from_numpy(query_labels)
    hits = label_hits(scores, truth).numpy()
    predicted = scores.argmax(dim=1).numpy()
    # a query whose class ties for the top is wrong: its column is the tied class of lowest index
    for q in np.nonzero(~hits & (predicted == query_labels))[0]:
        row = scores[q].clone()
        row[query_labels[q]] = -1.0
        predicted[q] = int((row >= scores[q, query_labels[q]]).nonzero()[0])
    c = len(names)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (query_labels, predicted), 1)
    count = np.bincount(query_labels, minlength=c)
    correct = np.bincount(query_labels, weights=hits, minlength=c).astype(np.int64)
    k = min(k, len(bank))
    return ClassAccuracy(names, count, correct, confusion, predicted, k, temperature)


def place_query(vector: np.ndarray, mapped: np.ndarray, xy: np.ndarray, k: int = 5) -> np.ndarray:
    """A query's place on the map: the mean position of its k nearest mapped samples (cosine;
    t-SNE has no transform of new points, so both layouts place queries this way)."""
    sims = mapped @ vector
    k = min(k, len(sims))
    nearest = np.argpartition(-sims, k - 1)[:k]
    return xy[nearest].mean(axis=0)
