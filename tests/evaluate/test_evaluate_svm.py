"""The `svm` protocol: TS2Vec's fit_svm (RBF, gamma 'scale', C by 5-fold CV on the bank, C = inf
on small banks), scored with ties against the query, its cost bounded on big banks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from selfsup.evaluate import svm
from selfsup.evaluate.context import Features
from selfsup.evaluate.registry import PROTOCOLS, run_protocols
from selfsup.units import format_figure, is_percent


def blobs(n_per_class: int, classes: int, spread: float, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 6, generator=gen) * 2
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), 6, generator=gen)
    return x, y


def test_svm_is_registered_with_labels_and_reads_as_percent():
    assert PROTOCOLS["svm"].needs == frozenset({"label"})
    assert is_percent("svm_top1") and not is_percent("svm_c") and not is_percent("svm_fit_rows")
    assert format_figure("svm_c", float("inf")) == "inf"


def test_c_and_accuracy_are_ts2vec_fit_svm_on_data_without_ties():
    x, y = blobs(30, 3, 2.0, seed=0)  # overlapping classes: the grid has something to choose
    q, qy = blobs(40, 3, 2.0, seed=0)
    q = q + 0.3 * torch.randn(q.shape, generator=torch.Generator().manual_seed(1))
    # the reference: tasks/_eval_protocols.py fit_svm of yuezhihan/ts2vec, scored by clf.score
    grid = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000, 10000, np.inf]
    ref = GridSearchCV(SVC(C=np.inf, gamma="scale"), {"C": grid}, cv=5).fit(x.double(), y)
    out = run_protocols(Features(q, x, y, qy), ("svm",))
    assert out["svm_c"] == ref.best_params_["C"]
    assert out["svm_top1"] == pytest.approx(ref.best_estimator_.score(q.double(), qy))
    assert 0.4 < out["svm_top1"] < 1.0


def test_small_bank_uses_a_hard_margin_as_ts2vec():
    x, y = blobs(4, 3, 0.5, seed=2)  # 12 rows: under 50, and under 5 per class
    q, qy = blobs(10, 3, 0.5, seed=2)
    out = run_protocols(Features(q, x, y, qy), ("svm",))
    assert out["svm_c"] == float("inf")
    assert out["svm_top1"] > 0.9


class Undecided:
    """A fitted SVM whose one-vs-one decision values are all exactly 0."""

    def __init__(self, classes: int):
        self.classes_ = np.arange(classes)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        pairs = len(self.classes_) * (len(self.classes_) - 1) // 2
        return np.zeros((len(x), pairs)) if pairs > 1 else np.zeros(len(x))


@pytest.mark.parametrize("classes", [2, 4])
def test_a_pair_decided_by_zero_votes_for_neither_class(classes):
    scores = svm.class_scores(Undecided(classes), np.zeros((5, 3)), classes)
    # every class ties: no query is a hit, whatever its label (sklearn's votes give class 0)
    assert bool((scores == scores[:, :1]).all())


def test_class_scores_agree_with_predict_and_mark_absent_classes():
    x, y = blobs(20, 3, 1.0, seed=3)
    model = svm.fit_svm(x.double().numpy(), (y + 1).numpy())  # classes 1..3; 0 never in the bank
    q, _ = blobs(15, 3, 1.0, seed=4)
    scores = svm.class_scores(model, q.double().numpy(), 4)
    assert torch.isinf(scores[:, 0]).all()
    assert (scores.argmax(1).numpy() == model.predict(q.double().numpy())).mean() > 0.95


def test_constant_features_tie_every_class():
    x = torch.full((60, 4), 0.3)
    y = torch.arange(60) % 3
    out = run_protocols(Features(x[:30], x, y, y[:30]), ("svm",))
    assert out == {"svm_top1": 0.0}


def test_big_bank_is_a_seeded_stratified_sample(monkeypatch):
    monkeypatch.setattr(svm, "MAX_SAMPLES", 60)
    x, y = blobs(50, 2, 1.0, seed=5)
    q, qy = blobs(20, 2, 1.0, seed=6)
    first = run_protocols(Features(q, x, y, qy), ("svm",))
    assert first["svm_fit_rows"] == 60
    assert run_protocols(Features(q, x, y, qy), ("svm",)) == first
    monkeypatch.setattr(svm, "MAX_SAMPLES", 100)  # at the bound: the whole bank, nothing said
    assert "svm_fit_rows" not in run_protocols(Features(q, x, y, qy), ("svm",))
