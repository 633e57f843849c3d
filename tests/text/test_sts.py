"""STS figures: Spearman and Pearson against scipy, per genre, alignment and uniformity."""

import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from selfsup.evaluate.sts import (
    spearman,
    sts_alignment_uniformity,
    sts_correlations,
)
from selfsup.modalities.raw import tfidf_features


def test_spearman_and_pearson_match_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (200,), generator=g).float()  # many ties, like gold STS scores
    b = a + torch.randn(200, generator=g)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-9)
    first, second = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
    cos = torch.nn.functional.cosine_similarity(first, second)
    got = sts_correlations(first, second, a, ["x" if i % 2 else "y" for i in range(200)])
    assert got["sts_spearman"] == pytest.approx(spearmanr(cos, a).statistic, abs=1e-6)
    assert got["sts_pearson"] == pytest.approx(pearsonr(cos, a).statistic, abs=1e-6)
    odd = torch.arange(200) % 2 == 1
    assert got["sts_spearman/x"] == pytest.approx(spearmanr(cos[odd], a[odd]).statistic, abs=1e-6)


def test_alignment_uses_pairs_above_four_only():
    first = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    second = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    scores = torch.tensor([5.0, 1.0, 4.5])
    figures = sts_alignment_uniformity(first, second, scores, torch.cat([first, second]))
    assert figures["sts_alignment"] == pytest.approx(0.0)
    assert "sts_uniformity" in figures


def test_tfidf_cosine_finds_shared_words():
    bank = ["a dog runs", "a cat sleeps", "stocks fall"]
    b, q = tfidf_features(bank, ["the dog runs fast"])
    sims = torch.nn.functional.cosine_similarity(q, b)
    assert int(sims.argmax()) == 0
    none, q2 = tfidf_features(bank, ["x"], with_bank=False)
    assert none is None and q2.shape[1] == b.shape[1]
