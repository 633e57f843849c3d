"""Known factors of variation (generated data, `Split.factors`): how well an embedding tells
each factor's levels apart, for disentanglement (a content code should tell the content factor
and not the style factor; a style code the reverse)."""

from __future__ import annotations

import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.knn import BANK_CHUNK, knn_accuracy


def majority_share(levels: torch.Tensor) -> float:
    """The share of the most frequent level: what always guessing it scores (chance)."""
    return torch.bincount(levels).max().item() / len(levels)


def factor_knn_protocol(features: Features) -> dict[str, float]:
    """The `factor_knn` protocol: per known factor, the weighted kNN top-1 of the queries
    against the bank with the factor's levels as classes (`factor_knn/NAME_top1`), beside its
    chance level, the queries' most frequent level (`factor_chance/NAME_top1`)."""
    bank, queries = features.bank_factors, features.query_factors
    if bank is None or queries is None or features.bank is None:
        raise SelfsupError(
            "factor_knn needs known factors on the bank and the queries (generated data such as "
            "styled-digits or styled-waves)"
        )
    if bank.names != queries.names:
        raise SelfsupError(f"bank factors {bank.names} and query factors {queries.names} differ")
    results: dict[str, float] = {}
    for k, name in enumerate(queries.names):
        results[f"factor_knn/{name}_top1"] = knn_accuracy(
            features.bank,
            bank.values[:, k],
            features.queries,
            queries.values[:, k],
            k=features.knn_k,
            temperature=features.knn_t,
            bank_chunk=BANK_CHUNK,
        )
        results[f"factor_chance/{name}_top1"] = majority_share(queries.values[:, k])
    return results
