"""What an evaluation protocol receives: frozen features of a bank and of queries, and the
annotations the data has (labels, sentence pairs with gold scores, two augmented views)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from selfsup.data.split import FactorLabels, SentencePairs
from selfsup.errors import SelfsupError


@dataclass
class EncoderInputs:
    """What a protocol that trains the encoder (fine-tuning) needs beyond features: the encoder,
    the model inputs of bank and queries (field -> (N, ...) tensors, as the modality makes them),
    `to_input` (the modality's `encoder_input`), the device and the fine-tuning options."""

    encoder: Any
    bank: dict[str, Tensor]
    queries: dict[str, Tensor]
    to_input: Callable[[dict[str, Tensor]], Any]
    device: torch.device | str = "cpu"
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
    pairs: SentencePairs | None = None  # STS pairs over the queries
    views: tuple[Tensor, Tensor] | None = None  # two augmented views of some queries
    retrieval: SentencePairs | None = None  # (query, relevant document) over the queries
    bank_factors: FactorLabels | None = None  # generated data's known factors (disentanglement)
    query_factors: FactorLabels | None = None
    knn_k: int = 200
    knn_t: float = 0.1
    model: EncoderInputs | None = None  # for protocols that train the encoder (fine-tuning)
    extra: dict[str, Any] = field(default_factory=dict)  # the modality's extra_features


class NonFiniteError(SelfsupError):
    """A protocol met NaN or infinite values (a fine-tuning that diverged); `run_protocols`
    adds who made the features."""


def check_finite(features: Features, who: str) -> None:
    """Raise one SelfsupError naming `who` when any feature is NaN or infinite.

    A NaN encoder must never be scored: NaN compares false with everything, so rankings count
    it as a perfect match and the protocols would report perfect figures.
    """
    parts: dict[str, Any] = {"queries": features.queries, "bank": features.bank}
    if features.views is not None:
        parts |= {"first view": features.views[0], "second view": features.views[1]}
    parts |= {name.replace("_", " "): value for name, value in features.extra.items()}
    for part, value in parts.items():
        if not isinstance(value, Tensor) or not value.is_floating_point():
            continue
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            raise SelfsupError(
                f"{who} gives features that are not finite: {int(bad.sum())} NaN or infinite "
                f"values of {value.numel()} in the {part}; a NaN encoder is never scored (after "
                "a diverged training: lower the learning rate and check the loss curve in "
                "metrics.jsonl)"
            )
