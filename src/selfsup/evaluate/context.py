"""What an evaluation protocol receives: frozen features of a bank and of queries, and the
annotations the data has (labels, sentence pairs with gold scores, two augmented views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class Features:
    """Features of one encoder (or baseline) on the evaluation data.

    `bank` is the reference set (the training split: kNN's neighbours, the probe's training
    data), `queries` the held-out samples scored. `pairs` index into the queries (STS).
    """

    queries: Tensor
    bank: Tensor | None = None
    bank_labels: Tensor | None = None
    query_labels: Tensor | None = None
    pairs: Any = None  # selfsup.data.text.SentencePairs over the queries
    views: tuple[Tensor, Tensor] | None = None  # two augmented views of some queries
    knn_k: int = 200
    knn_t: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)  # the modality's extra_features
