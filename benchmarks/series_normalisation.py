"""How much a series set's level per channel carries: the raw-signal SVM (TS2Vec's protocol:
RBF, gamma scale, C by 5-fold cross-validation) on each series z-normalised per channel (what
selfsup's series encoders and raw baseline do) vs scaled per channel by the training split's
statistics (TS2Vec's loader for UEA sets). Run by hand; prints one line per normalisation.

    PYTHONPATH=src python benchmarks/series_normalisation.py --set JapaneseVowels
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from selfsup.data import load_data

C_GRID = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3, 1e4]


def per_series(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Each series z-normalised per channel over its valid steps, flattened."""
    w = m[:, None].astype(float)
    n = w.sum(2, keepdims=True)
    mu = (x * w).sum(2, keepdims=True) / n
    sd = np.sqrt((((x - mu) * w) ** 2).sum(2, keepdims=True) / n).clip(1e-8)
    return ((x - mu) / sd * w).reshape(len(x), -1)


def per_channel(x: np.ndarray, m: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Each channel scaled by the training split's mean and std over valid steps, flattened."""
    return ((x - mu[None, :, None]) / sd[None, :, None] * m[:, None]).reshape(len(x), -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="JapaneseVowels", help="a ucr: set name")
    args = parser.parse_args()
    data = load_data(f"ucr:{args.set}")
    xtr, mtr = data.train.series.numpy(), data.train.mask.numpy()
    xte, mte = data.test.series.numpy(), data.test.mask.numpy()
    ytr, yte = data.train.labels.numpy(), data.test.labels.numpy()
    w = mtr[:, None]
    mu = (xtr * w).sum((0, 2)) / w.sum((0, 2))
    sd = np.sqrt((((xtr - mu[None, :, None]) * w) ** 2).sum((0, 2)) / w.sum((0, 2))).clip(1e-8)
    for name, train, test in (
        ("per series", per_series(xtr, mtr), per_series(xte, mte)),
        (
            "per channel, training split",
            per_channel(xtr, mtr, mu, sd),
            per_channel(xte, mte, mu, sd),
        ),
    ):
        svc = SVC(kernel="rbf", gamma="scale", max_iter=1_000_000)
        grid = GridSearchCV(svc, {"C": C_GRID}, cv=5).fit(train, ytr)
        print(f"{args.set}, {name}: raw-signal SVM {100 * grid.score(test, yte):.1f} %")


if __name__ == "__main__":
    main()
