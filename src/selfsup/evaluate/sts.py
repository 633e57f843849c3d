"""Semantic textual similarity: how well cosine similarity of sentence embeddings ranks pairs
the way people scored them (STS Benchmark); TF-IDF, the baseline to beat, is in
`modalities/raw.py`.

Figures: Spearman (the field's headline, SimCSE's "all" setting: one correlation over every
pair) and Pearson, overall and per genre; alignment over pairs with gold > 4 and uniformity
over all sentences, as in the SimCSE paper (Gao et al. 2021, sec. 5, after Wang & Isola 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.evaluate.context import Features
from selfsup.evaluate.geometry import alignment, coincide, uniformity

POSITIVE_GOLD = 4.0  # pairs scored above this are positives for alignment (SimCSE)


def _ranks(x: Tensor) -> Tensor:
    """Ranks 1..n with ties given their average rank, as Spearman's rho needs."""
    order = torch.argsort(x, stable=True)
    sorted_x = x[order]
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(x) + 1, dtype=torch.float64)
    # average the ranks within each group of equal values
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(counts), dtype=torch.float64).index_add_(0, inverse, ranks[order])
    ranks[order] = (sums / counts)[inverse]
    return ranks


def pearson(a: Tensor, b: Tensor) -> float:
    """Pearson's correlation of two 1-D tensors."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation: Pearson's of the (tie-averaged) ranks."""
    return pearson(_ranks(a.double()), _ranks(b.double()))


def sts_correlations(
    first: Tensor,
    second: Tensor,
    scores: Tensor,
    genres: list[str] | None = None,
    files: list[str] | None = None,
) -> dict[str, float]:
    """Correlations of cos(first_i, second_i) with the gold scores: over all pairs (SimCSE's
    "all" setting), per genre ("sts_spearman/GENRE") and, when the pairs come from several
    files, per file ("sts_spearman@FILE", and per genre within it: "sts_spearman@FILE/GENRE")."""
    cosine = F.cosine_similarity(first.float(), second.float(), dim=1).cpu()
    gold = scores.cpu()
    results = {"sts_spearman": spearman(cosine, gold), "sts_pearson": pearson(cosine, gold)}
    results |= _by_group(cosine, gold, genres, "sts_spearman/{}")
    if files is not None and len(set(files)) > 1:
        results |= _by_group(cosine, gold, files, "sts_spearman@{}")
        for name in sorted(set(files)):
            picked = torch.tensor([f == name for f in files])
            sub = (
                None
                if genres is None
                else [g for g, k in zip(genres, picked.tolist(), strict=True) if k]
            )
            results |= _by_group(cosine[picked], gold[picked], sub, "sts_spearman@" + name + "/{}")
    return results


def _by_group(cosine: Tensor, gold: Tensor, groups: list[str] | None, key: str) -> dict:
    """Spearman within each group of at least 3 pairs, named by `key.format(group)`."""
    results: dict[str, float] = {}
    if groups is None:
        return results
    for group in sorted(set(groups)):
        picked = torch.tensor([g == group for g in groups])
        if int(picked.sum()) >= 3:
            results[key.format(group)] = spearman(cosine[picked], gold[picked])
    return results


def sts_alignment_uniformity(
    first: Tensor, second: Tensor, scores: Tensor, embeddings: Tensor
) -> dict[str, float]:
    """Alignment over pairs with gold > 4, uniformity over all sentence embeddings. A collapsed
    encoder (every sentence one point) gets no alignment: it would be a perfect 0."""
    results = {"sts_uniformity": uniformity(embeddings)}
    positive = scores > POSITIVE_GOLD
    if int(positive.sum()) > 0 and not coincide(embeddings):
        results["sts_alignment"] = alignment(first[positive], second[positive])
    return results


def sts_protocol(features: Features) -> dict[str, float]:
    """The `sts` protocol on the queries' pairs."""
    pairs = features.pairs
    first, second = features.queries[pairs.first], features.queries[pairs.second]
    scores = pairs.scores.to(first.device)
    return sts_correlations(
        first, second, pairs.scores, pairs.genres, pairs.files
    ) | sts_alignment_uniformity(first, second, scores, features.queries)
