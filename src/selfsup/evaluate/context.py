"""What an evaluation protocol receives: frozen features of a bank and of queries, and the
annotations the data has (labels, sentence pairs with gold scores, two augmented views)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class EncoderInputs:
    """What a protocol that trains the encoder (fine-tuning) needs beyond features: the encoder,
    the model inputs of bank and queries (field -> (N, ...) tensors, as the modality makes them),
    `to_input` (the modality's `encoder_input`), the device and the fine-tuning options."""

    encoder: Any
    bank: dict[str, Tensor]
    queries: dict[str, Tensor]
    to_input: Callable[[dict[str, Tensor]], Any]
    device: Any = "cpu"
    fraction: float = 1.0
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 128
    llrd: float = 0.75
    seed: int = 0


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
    retrieval: Any = None  # SentencePairs (query, relevant document) over the queries
    knn_k: int = 200
    knn_t: float = 0.1
    model: EncoderInputs | None = None  # for protocols that train the encoder (fine-tuning)
    extra: dict[str, Any] = field(default_factory=dict)  # the modality's extra_features
