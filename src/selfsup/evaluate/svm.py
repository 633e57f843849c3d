"""The field's protocol for series representations: an RBF-SVM on frozen features, its C chosen
by 5-fold cross-validation on the bank, as TS2Vec's evaluation (`tasks/_eval_protocols.py`
`fit_svm` of yuezhihan/ts2vec) does it, scored on the queries with ties counted against them."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.ties import label_hits
from selfsup.modalities.raw import sample_rows

# TS2Vec's grid (C = inf: a hard margin) and its bound on the rows the grid search is fit on.
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, float("inf"))
MAX_SAMPLES = 10_000
# libsvm iterations per binary sub-problem. TS2Vec's grid uses 10,000,000 and its small-set
# rule no bound at all: a hard margin on rows that no kernel separates (duplicates of another
# class, a collapsed encoder) then never ends (measured: SVC(C=inf) on constant features ran
# for 10 minutes without finishing). UCR-size problems converge in far fewer iterations.
MAX_ITER = 1_000_000


def _svc(c: float) -> Any:
    from sklearn.svm import SVC  # lazily: heavy

    # "ovo": the one-vs-one decision values `class_scores` votes with (predict is the same)
    return SVC(C=c, kernel="rbf", gamma="scale", max_iter=MAX_ITER, decision_function_shape="ovo")


def fit_svm(x: np.ndarray, y: np.ndarray) -> Any:
    """The fitted SVC as TS2Vec's `fit_svm`: C = inf when the bank has under 5 rows per class or
    under 50 rows; else C chosen from C_GRID by GridSearchCV (5 stratified folds, accuracy; a
    tie goes to the smaller C) and refit on the bank."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    classes = len(np.unique(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # bounded by MAX_ITER, said in docs
        if len(x) // classes < 5 or len(x) < 50:
            return _svc(float("inf")).fit(x, y)
        search = GridSearchCV(_svc(1.0), {"C": list(C_GRID)}, cv=5, n_jobs=1)
        return search.fit(x, y).best_estimator_


def class_scores(model: Any, x: np.ndarray, num_classes: int) -> Tensor:
    """(N, num_classes) scores whose argmax is the SVM's prediction: one-vs-one votes plus the
    summed confidences squashed below one vote (sklearn's `break_ties` rule), except that a
    pair decided by a decision value of exactly 0 votes for neither class (sklearn gives it to
    the first), so that features that separate nothing tie every class. Classes absent from
    the bank score -inf."""
    known = model.classes_
    dec = np.asarray(model.decision_function(x), dtype=np.float64)
    if len(known) == 2:  # (N,): positive means the second class
        votes = np.stack([(dec < 0), (dec > 0)], 1).astype(np.float64)
        conf = np.stack([-dec, dec], 1)
    else:
        votes = np.zeros((len(x), len(known)))
        conf = np.zeros((len(x), len(known)))
        pair = 0
        for i in range(len(known)):
            for j in range(i + 1, len(known)):
                d = dec[:, pair]  # positive means class i
                votes[:, i] += d > 0
                votes[:, j] += d < 0
                conf[:, i] += d
                conf[:, j] -= d
                pair += 1
    scores = torch.full((len(x), num_classes), float("-inf"), dtype=torch.float64)
    scores[:, torch.as_tensor(known)] = torch.from_numpy(votes + conf / (3 * (np.abs(conf) + 1)))
    return scores


def svm_accuracy(
    train_feats: Tensor, train_labels: Tensor, test_feats: Tensor, test_labels: Tensor
) -> dict[str, float]:
    """Test accuracy of the RBF-SVM fitted on (a seeded, stratified sample of at most
    MAX_SAMPLES of) the training features, the C it chose (none when the bank's features are
    all one point: every query then ties), and the rows it was fit on when sampled."""
    if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
        raise SelfsupError(
            "the SVM expects 2-D features of equal width; got "
            f"{tuple(train_feats.shape)} for the bank and {tuple(test_feats.shape)} for queries"
        )
    if len(train_feats) != len(train_labels) or len(test_feats) != len(test_labels):
        raise SelfsupError("the SVM needs exactly one label per feature, bank and queries")
    if len(train_feats) < 2 or len(test_feats) == 0:
        raise SelfsupError("the SVM needs at least 2 bank rows and 1 query")
    if train_labels.min() < 0 or test_labels.min() < 0:
        raise SelfsupError("SVM labels must be class indices >= 0")
    y = train_labels.cpu().long()
    if len(y.unique()) < 2:
        raise SelfsupError("the SVM needs at least two classes in the bank")
    rows = len(y)
    if rows > MAX_SAMPLES:
        keep = sample_rows(rows, MAX_SAMPLES, y, seed=0)
        train_feats, y = train_feats[keep], y[keep]
    x = train_feats.detach().cpu().double().numpy()
    num_classes = int(max(y.max(), test_labels.max())) + 1
    if bool((x == x[:1]).all()):  # one point: a constant kernel, no SVM tells classes apart
        scores = torch.zeros(len(test_feats), num_classes)
        out: dict[str, float] = {}  # no C was chosen
    else:
        model = fit_svm(x, y.numpy())
        scores = class_scores(model, test_feats.detach().cpu().double().numpy(), num_classes)
        out = {"C": float(model.C)}
    out["accuracy"] = label_hits(scores, test_labels).float().mean().item()
    if rows > MAX_SAMPLES:
        out["fit_rows"] = float(MAX_SAMPLES)
    return out


def svm_protocol(features: Features) -> dict[str, float]:
    """The `svm` protocol: RBF-SVM fitted on the bank (C by 5-fold CV), top-1 on the queries;
    `svm_c` the C chosen, `svm_fit_rows` the bank rows fit on when the bank was sampled."""
    result = svm_accuracy(
        features.bank, features.bank_labels, features.queries, features.query_labels
    )
    out = {"svm_top1": result["accuracy"]}
    if "C" in result:
        out["svm_c"] = result["C"]
    if "fit_rows" in result:
        out["svm_fit_rows"] = result["fit_rows"]
    return out
