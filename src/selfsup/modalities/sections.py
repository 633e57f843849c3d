"""What a modality shows in the report, as data that `report_parts` renders (the one place that
writes HTML): the kinds of section, and the seeded choice of queries and their neighbours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from selfsup.embedding import unit_rows

NUM_QUERIES = 6
NUM_NEIGHBOURS = 8


@dataclass(frozen=True)
class ImageNeighbours:
    """Queries and their top neighbours among the bank in each space (name -> (Q, k) rows of
    `bank`): "learned" and "pixels". Images are uint8 (N, C, H, W), as the encoder sees them."""

    queries: torch.Tensor
    bank: torch.Tensor
    spaces: dict[str, np.ndarray]
    query_labels: np.ndarray | None
    bank_labels: np.ndarray | None
    classes: list[str] | None


@dataclass(frozen=True)
class AugmentedViews:
    """A uint8 (H, W, 3) grid: each row a sample, then views drawn by the training recipe."""

    grid: np.ndarray
    recipe: str
    summary: str
    reason: str | None  # why this recipe (the method's published one, ...), when known


@dataclass(frozen=True)
class SentenceNeighbours:
    """Query sentences and their top neighbours in each space (name -> one list per query)."""

    queries: list[str]
    spaces: dict[str, list[list[str]]]
    bank_size: int
    held_out: bool  # queries from a held-out split (else training sentences)
    missing: str | None  # why the model as loaded is not among the spaces


@dataclass(frozen=True)
class PairRetrieval:
    """Caption -> images and image -> captions among pairs (image i, caption i): per query
    pair, (its index, the top `k` pairs found, the rank of its own pair, ties against it)."""

    images: torch.Tensor
    captions: list[str]
    source: str
    k: int
    caption_to_images: list[tuple[int, np.ndarray, int]]
    image_to_captions: list[tuple[int, np.ndarray, int]]


# (anchor, title, content); content as text is a note saying why there is nothing to show
Content = ImageNeighbours | AugmentedViews | SentenceNeighbours | PairRetrieval | str
Section = tuple[str, str, Content]


def subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(rng.choice(n, limit, replace=False))


def pick_queries(labels: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """NUM_QUERIES distinct samples, one per class first where labels exist, seeded."""
    order = rng.permutation(n)
    if labels is None:
        return order[:NUM_QUERIES]
    picked, seen = [], set()
    for i in order:
        if labels[i] not in seen:
            picked.append(i)
            seen.add(labels[i])
        if len(picked) == NUM_QUERIES:
            break
    rest = [i for i in order if i not in set(picked)]
    return np.array((picked + rest)[:NUM_QUERIES], dtype=int)


def top_k(query: np.ndarray, bank: np.ndarray, exclude: list[np.ndarray] | None) -> np.ndarray:
    """Indices of the NUM_NEIGHBOURS best cosine matches in `bank` per query row."""
    sims = unit_rows(query) @ unit_rows(bank).T
    if exclude is not None:
        for row, skip in enumerate(exclude):
            sims[row, skip] = -np.inf
    k = min(NUM_NEIGHBOURS, bank.shape[0])
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]
