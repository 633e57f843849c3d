"""Disentanglement of a representation against the known factors of generated data: the
Mutual Information Gap (Chen et al. 2018) and DCI disentanglement and completeness (Eastwood &
Williams 2018), computed as google-research/disentanglement_lib computes them
(`evaluation/metrics/mig.py`, `dci.py`, `utils.py`).

MIG: each representation dimension is discretised into 20 equal-width bins over its range
(`_histogram_discretize`), the mutual information of every (dimension, factor) pair is
sklearn's `mutual_info_score`, and per factor the gap between the two most informative
dimensions is divided by the factor's entropy; MIG is the mean over factors. Scored on the
held-out queries (disentanglement_lib: 10,000 points).
DCI: one gradient-boosted tree classifier per factor (sklearn's defaults) is fit on the bank
(disentanglement_lib's training points: it takes 10,000, here a seeded 2,000) and scored
on the queries (its test points: 5,000 there, a seeded 1,000 here); the absolute feature
importances form a (dimension x factor) matrix R. Disentanglement = sum over dimensions of
(1 - entropy of R's row, base the number of factors) weighted by the row's share of R;
completeness the same over factors; informativeness the trees' mean accuracy on the queries.
Representations wider than DCI_MAX_DIM (raw pixels) get MIG only: the trees' cost grows with
the width.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from selfsup.evaluate.context import Features

BINS = 20
# disentanglement_lib fits on 10,000 points and tests on 5,000; a seeded 2,000 / 1,000 here
# (docs/methods-generative.md: the trees took minutes per factor on a shared CPU)
DCI_TRAIN = 2_000
DCI_TEST = 1_000
DCI_MAX_DIM = 64


def histogram_discretize(x: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(N, D) values to integer bins per column: `bins` equal-width bins over the column's
    range (np.histogram's edges, np.digitize), as disentanglement_lib."""
    out = np.zeros(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.histogram(x[:, j], bins)[1][:-1]
        out[:, j] = np.digitize(x[:, j], edges)
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) discrete mutual information in nats of each code column with each factor."""
    from sklearn.metrics import mutual_info_score

    return np.array(
        [
            [mutual_info_score(factors[:, k], codes[:, d]) for k in range(factors.shape[1])]
            for d in range(codes.shape[1])
        ]
    )


def mig(representation: np.ndarray, factors: np.ndarray) -> float:
    """The mutual information gap of (N, D) features against (N, K) integer factor levels.
    A factor with one level (entropy 0) is left out; no factor varies: NaN."""
    m = mutual_information(histogram_discretize(representation), factors)
    entropy = mutual_information(factors, factors).diagonal()
    varies = entropy > 0
    if not varies.any():
        return float("nan")
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    return float(np.mean((top[0] - second)[varies] / entropy[varies]))


def importance_matrix(
    bank: np.ndarray, bank_factors: np.ndarray, queries: np.ndarray, query_factors: np.ndarray
) -> tuple[np.ndarray, float]:
    """(D, K) absolute feature importances of one gradient-boosted classifier per factor,
    fit on the bank, and their mean accuracy on the queries."""
    from sklearn.ensemble import GradientBoostingClassifier

    r = np.zeros((bank.shape[1], bank_factors.shape[1]))
    accuracy = []
    for k in range(bank_factors.shape[1]):
        model = GradientBoostingClassifier(random_state=0).fit(bank, bank_factors[:, k])
        r[:, k] = np.abs(model.feature_importances_)
        accuracy.append(np.mean(model.predict(queries) == query_factors[:, k]))
    return r, float(np.mean(accuracy))


def _weighted_one_minus_entropy(r: np.ndarray) -> float:
    """sum over rows of (1 - entropy of the row, base its length) x the row's share of r."""
    from scipy.stats import entropy

    per_row = 1.0 - entropy(r.T + 1e-11, base=r.shape[1])
    weights = r if r.sum() > 0 else np.ones_like(r)
    return float(np.sum(per_row * weights.sum(axis=1) / weights.sum()))


def dci_disentanglement(r: np.ndarray) -> float:
    """DCI disentanglement of a (dimension x factor) importance matrix."""
    return _weighted_one_minus_entropy(r)


def dci_completeness(r: np.ndarray) -> float:
    """DCI completeness of a (dimension x factor) importance matrix."""
    return _weighted_one_minus_entropy(r.T)


def _rows(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).cpu().numpy()


def disentanglement_protocol(features: Features) -> dict[str, float]:
    """MIG on the queries; DCI fit on the bank and scored on the queries."""
    queries, q_factors = _numpy(features.queries), features.query_factors.values.numpy()
    results = {"mig": mig(queries, q_factors)}
    if features.bank is None or features.bank_factors is None or queries.shape[1] > DCI_MAX_DIM:
        return results
    fit = _rows(len(features.bank), DCI_TRAIN, 0)
    test = _rows(len(queries), DCI_TEST, 1)
    bank, b_factors = _numpy(features.bank)[fit], features.bank_factors.values.numpy()[fit]
    r, accuracy = importance_matrix(bank, b_factors, queries[test], q_factors[test])
    return results | {
        "dci_disentanglement": dci_disentanglement(r),
        "dci_completeness": dci_completeness(r),
        "dci_informativeness": accuracy,
    }
