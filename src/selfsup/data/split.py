"""The interface every data source's splits share, and the train/test pair a source returns.

A split (`ImageData`, `TextData`, `SeriesData`, `PairData`) is one set of samples of one
modality: rows that `subset` selects, labels for evaluation, and what evaluation can score on
it, named by `serves` and matched against each protocol's `needs` (evaluate.registry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass
class SentencePairs:
    """Pairs of rows (indices into a split) with gold similarity scores: STS pairs, or
    (query, relevant document) pairs for retrieval (scores unused)."""

    first: Tensor  # int64 (P,)
    second: Tensor  # int64 (P,)
    scores: Tensor  # float32 (P,)
    genres: list[str] | None = None
    files: list[str] | None = None  # which file each pair came from (several STS files)

    def __len__(self) -> int:
        return len(self.scores)

    def subset(self, positions: list[int], total: int) -> SentencePairs | None:
        """The pairs re-indexed to the kept row `positions` (of `total` rows): a pair survives
        when both of its rows are kept; None when none does."""
        new = torch.full((total,), -1, dtype=torch.long)
        new[torch.as_tensor(positions, dtype=torch.long)] = torch.arange(len(positions))
        first, second = new[self.first], new[self.second]
        keep = (first >= 0) & (second >= 0)
        if not bool(keep.any()):
            return None
        kept = keep.tolist()

        def rows(values: list[str] | None) -> list[str] | None:
            return None if values is None else [v for v, k in zip(values, kept, strict=True) if k]

        return SentencePairs(
            first[keep], second[keep], self.scores[keep], rows(self.genres), rows(self.files)
        )


@dataclass
class FactorLabels:
    """The known factors of variation of generated samples (shape, scale, colour, ...), one
    integer level per sample and factor: for evaluation only (disentanglement), never shown to
    a method."""

    values: Tensor  # int64 (N, K): sample n's level of factor k
    names: tuple[str, ...]  # the K factors' names

    def __post_init__(self) -> None:
        v = self.values
        if v.dtype != torch.int64 or v.dim() != 2 or v.shape[1] != len(self.names):
            raise ValueError(
                f"factor values must be int64 (N, {len(self.names)}) for factors {self.names}; "
                f"got {v.dtype} {tuple(v.shape)}"
            )

    def __len__(self) -> int:
        return len(self.values)

    def subset(self, index: Tensor) -> FactorLabels:
        return FactorLabels(self.values[index], self.names)


class Split:
    """Base of every split. A kind that holds an annotation declares it as a field; the others
    inherit None. `serves` names what evaluation can score: "label" (class labels), "pairs"
    (sentence pairs with gold scores, STS), "retrieval" ((query, document) pairs), "captions"
    (one caption per image), "factors" (known factors of variation of generated data)."""

    name: str
    labels: Tensor | None  # int64 (N,), for evaluation only
    classes: list[str] | None
    pairs: SentencePairs | None = None
    retrieval: SentencePairs | None = None
    captions: list[str] | None = None
    factors: FactorLabels | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def subset(self, index: Tensor) -> Split:
        """The rows at `index` (integer positions or a boolean mask), with their annotations."""
        raise NotImplementedError

    @property
    def serves(self) -> frozenset[str]:
        held = {
            "label": self.labels,
            "pairs": self.pairs,
            "retrieval": self.retrieval,
            "captions": self.captions,
            "factors": self.factors,
        }
        return frozenset(name for name, value in held.items() if value is not None)


class StreamedSplit(Split):
    """A train split read as a stream rather than indexed in memory (WebDataset shards): it
    makes the loop's batch source itself, holds out by a rule it records, and is evaluated
    through a bounded bank of its samples decoded in memory."""

    def batch_source(
        self,
        to_fields: Callable[[Split], dict[str, Tensor]],
        global_batch: int,
        rank: int,
        world: int,
        seed: int,
        device: torch.device,
    ) -> Any:
        """This rank's batches (a `train.BatchSource`); `to_fields` turns decoded samples into
        the method's fields."""
        raise NotImplementedError

    def heldout_record(self) -> dict[str, Any]:
        """What heldout.json records of the rule that holds samples out."""
        raise NotImplementedError

    def bank(self) -> Split:
        """The bounded in-memory samples evaluation uses as its bank."""
        raise NotImplementedError


@dataclass
class DataSplits:
    """A source's train split and its held-out test split (None when the source has none);
    `test_from` says where the test split came from when it is not the source's own."""

    train: Split
    test: Split | None
    test_from: str | None = None


def row_positions(index: Tensor) -> list[int]:
    """Row positions of an index tensor (integer positions or a boolean mask)."""
    return index.nonzero()[:, 0].tolist() if index.dtype == torch.bool else index.tolist()


def holdout_positions(
    n: int, labels: Tensor | None, fraction: float = 0.2, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """(train, test) positions of n samples: a deterministic `fraction` as test, stratified by
    label when labels allow it."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must lie in (0, 1); got {fraction}")
    if n < 2:
        raise ValueError(f"cannot hold out a test split from {n} sample(s)")
    index = torch.arange(n).numpy()
    stratify = None if labels is None else labels.numpy()
    try:
        train, test = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=stratify
        )
    except ValueError:  # a class with one member, or fewer test slots than classes
        train, test = train_test_split(index, test_size=fraction, random_state=seed)
    return torch.from_numpy(train), torch.from_numpy(test)


def holdout(data: Split, fraction: float = 0.2, seed: int = 0) -> DataSplits:
    """Split off a deterministic `fraction` of `data` as test (see `holdout_positions`)."""
    train, test = holdout_positions(len(data), data.labels, fraction, seed)
    return DataSplits(train=data.subset(train), test=data.subset(test))
