"""MIG and DCI against hand-computed cases and disentanglement_lib's definitions."""

import math

import numpy as np
import pytest
import torch

from selfsup.data.split import FactorLabels
from selfsup.evaluate.context import Features
from selfsup.evaluate.disentanglement import (
    dci_completeness,
    dci_disentanglement,
    disentanglement_protocol,
    histogram_discretize,
    mig,
    mutual_information,
)
from selfsup.evaluate.registry import PROTOCOLS

RNG = np.random.default_rng(0)
N = 1200
FACTORS = np.stack([RNG.integers(0, n, N) for n in (3, 4, 5)], 1)


def test_histogram_bins_are_equal_width_over_the_range():
    x = np.array([[0.0], [0.49], [0.5], [1.0]])
    assert histogram_discretize(x, bins=2)[:, 0].tolist() == [1, 1, 2, 2]


def test_mutual_information_by_hand():
    a = np.array([[0], [0], [1], [1]])
    assert mutual_information(a, a)[0, 0] == pytest.approx(math.log(2))
    b = np.array([[0], [1], [0], [1]])
    assert mutual_information(a, b)[0, 0] == pytest.approx(0.0)


def test_mig_of_the_factors_themselves_is_one_and_of_noise_near_zero():
    # near 1, not 1: the second-best dimension shares a little sample information by chance
    assert mig(FACTORS.astype(float), FACTORS) == pytest.approx(1.0, abs=0.02)
    permuted = FACTORS[:, [2, 0, 1]] * 3.0 - 1.0  # order and scale of the dimensions do not matter
    assert mig(permuted, FACTORS) == pytest.approx(mig(FACTORS.astype(float), FACTORS))
    noise = RNG.normal(size=(N, 10))
    assert 0 <= mig(noise, FACTORS) < 0.05
    # one dimension carrying two factors: no gap for either of them
    mixed = np.stack([FACTORS[:, 0] * 4 + FACTORS[:, 1], FACTORS[:, 0] * 4 + FACTORS[:, 1]], 1)
    assert mig(mixed.astype(float), FACTORS[:, :2]) == pytest.approx(0.0, abs=1e-9)
    assert mig(np.ones((N, 4)), FACTORS) == 0.0  # constant: no information


def test_dci_by_hand():
    one_each = np.eye(3)  # dimension i matters only for factor i
    assert dci_disentanglement(one_each) == pytest.approx(1.0)
    assert dci_completeness(one_each) == pytest.approx(1.0)
    spread = np.ones((3, 3))  # every dimension matters equally for every factor
    assert dci_disentanglement(spread) == pytest.approx(0.0, abs=1e-9)
    # two dimensions each of one factor, with weights 3:1; a third for both factors equally
    r = np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    want = (3 * 1 + 1 * 1 + 2 * 0) / 6
    assert dci_disentanglement(r) == pytest.approx(want, abs=1e-6)
    assert dci_disentanglement(np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-9)


def features(queries: np.ndarray, bank: np.ndarray, q: np.ndarray, b: np.ndarray) -> Features:
    names = tuple(f"f{k}" for k in range(q.shape[1]))
    return Features(
        queries=torch.from_numpy(queries).float(),
        bank=torch.from_numpy(bank).float(),
        query_factors=FactorLabels(torch.from_numpy(q), names),
        bank_factors=FactorLabels(torch.from_numpy(b), names),
    )


def test_the_protocol_scores_the_factors_high_and_noise_low():
    small = FACTORS[:, :2]  # two factors keep the trees quick
    bank, queries = small[:800], small[800:]
    jitter = RNG.normal(0, 0.01, small.shape)
    good = disentanglement_protocol(
        features(
            (queries + jitter[800:])[:, ::-1].copy(),
            (bank + jitter[:800])[:, ::-1].copy(),
            queries,
            bank,
        )
    )
    assert good["mig"] > 0.95 and good["dci_disentanglement"] > 0.95
    assert good["dci_completeness"] > 0.95 and good["dci_informativeness"] > 0.95
    noise = RNG.normal(size=(N, 4))
    bad = disentanglement_protocol(features(noise[800:], noise[:800], queries, bank))
    assert bad["mig"] < 0.05 and bad["dci_disentanglement"] < 0.2
    assert PROTOCOLS["disentanglement"].needs == frozenset({"factors"})


def test_wide_features_get_mig_only():
    wide = RNG.normal(size=(200, 100))
    f = FACTORS[:200, :1]
    result = disentanglement_protocol(features(wide[100:], wide[:100], f[100:], f[:100]))
    assert set(result) == {"mig"}
