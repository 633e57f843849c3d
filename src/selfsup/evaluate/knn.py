"""Weighted k-nearest-neighbour classifier on frozen features, the field's standard monitor."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.ties import label_hits


def _check(train_feats: Tensor, train_labels: Tensor, query_feats: Tensor) -> None:
    if train_feats.ndim != 2 or query_feats.ndim != 2:
        raise SelfsupError(
            "kNN expects 2-D features (N, D); got "
            f"{tuple(train_feats.shape)} for the bank and {tuple(query_feats.shape)} for queries"
        )
    if len(train_feats) == 0:
        raise SelfsupError("kNN needs at least one training feature in the bank")
    if train_feats.shape[1] != query_feats.shape[1]:
        raise SelfsupError(
            f"kNN feature sizes differ: bank has {train_feats.shape[1]} dims, "
            f"queries have {query_feats.shape[1]}"
        )
    if train_labels.shape != (len(train_feats),):
        raise SelfsupError(
            f"kNN needs one label per bank feature: {len(train_feats)} features, "
            f"labels of shape {tuple(train_labels.shape)}"
        )
    if train_labels.min() < 0:
        raise SelfsupError("kNN labels must be class indices >= 0; drop unlabelled samples first")


BANK_CHUNK = 65_536  # bank rows scored at once: CIFAR-10's 50,000 stay one chunk


def _top(sims: Tensor, ids: Tensor | None, k: int) -> tuple[Tensor, Tensor]:
    """The k largest values of each row of `sims` (best first) and their bank ids (`ids`, or
    the column when None). Ties go to the lower id, so that the neighbours do not depend on
    how the bank is chunked: topk's own choice among equal values is unspecified."""
    if ids is not None:  # a merge (Q, 2k): order by id, then a stable sort by value
        by_id = ids.argsort(dim=1)
        sims, ids = sims.gather(1, by_id), ids.gather(1, by_id)
        vals, pos = sims.sort(dim=1, descending=True, stable=True)
        return vals[:, :k], ids.gather(1, pos[:, :k])
    if k == sims.shape[1]:  # every column is taken: no tie can be left out
        return sims.topk(k, dim=1)
    vals, idx = sims.topk(k + 1, dim=1)
    # rows whose (k+1)-th value equals the k-th: an equal value was left out and topk's pick
    # may not be the lowest column, so those rows are sorted stably (rare: exact ties)
    unsure = (vals[:, k] == vals[:, k - 1]).nonzero().flatten()
    vals, idx = vals[:, :k], idx[:, :k]
    if len(unsure):
        v, i = sims[unsure].sort(dim=1, descending=True, stable=True)
        vals[unsure], idx[unsure] = v[:, :k], i[:, :k]
    return vals, idx


def knn_scores(
    train_feats: Tensor,
    train_labels: Tensor,
    query_feats: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
    bank_chunk: int = BANK_CHUNK,
) -> Tensor:
    """Class scores (Q, num_classes) of the weighted kNN vote of Wu et al. 2018 (InstDisc).

    Cosine similarity to the top-k bank features, each neighbour votes exp(sim / temperature)
    for its class. Queries go in chunks of chunk_size, the bank in chunks of bank_chunk with a
    running top-k merge, so memory stays at chunk_size x bank_chunk similarities whatever the
    bank's size. Neighbours tied at the k-th similarity are the lower bank rows (the same
    neighbours however the bank is chunked); a tie between class scores is counted against
    the query by `knn_accuracy`.
    """
    _check(train_feats, train_labels, query_feats)
    if k < 1 or chunk_size < 1 or bank_chunk < 1:
        raise SelfsupError(
            f"kNN needs k >= 1, chunk_size >= 1 and bank_chunk >= 1, got k={k}, "
            f"chunk={chunk_size}, bank_chunk={bank_chunk}"
        )
    device = train_feats.device
    labels = train_labels.to(device=device, dtype=torch.long)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    k = min(k, len(train_feats))
    if len(train_feats) <= bank_chunk:  # normalised once, as the bank fits one chunk
        parts = [(0, F.normalize(train_feats.float(), dim=1))]
    else:  # each chunk normalised when scored: no normalised copy of the whole bank
        parts = [(s, None) for s in range(0, len(train_feats), bank_chunk)]
    out = []
    for start in range(0, len(query_feats), chunk_size):
        query = F.normalize(query_feats[start : start + chunk_size].to(device).float(), dim=1)
        best: tuple[Tensor, Tensor] | None = None
        for offset, bank in parts:
            if bank is None:
                rows = train_feats[offset : offset + bank_chunk]
                bank = F.normalize(rows.to(device).float(), dim=1)
            sims, idx = _top(query @ bank.T, None, min(k, len(bank)))
            if best is None:
                best = (sims, idx + offset)
            else:
                both = (torch.cat([best[0], sims], 1), torch.cat([best[1], idx + offset], 1))
                best = _top(*both, k)
        assert best is not None
        sims, idx = best
        weights = (sims / temperature).exp()
        scores = torch.zeros(len(query), num_classes, device=device)
        scores.scatter_add_(1, labels[idx], weights)
        out.append(scores)
    if not out:
        return torch.empty(0, num_classes, device=query_feats.device)
    return torch.cat(out).to(query_feats.device)


def knn_predict(
    train_feats: Tensor, train_labels: Tensor, query_feats: Tensor, **options: Any
) -> Tensor:
    """Predicted class per query: the argmax of `knn_scores` with its keyword `options` (k,
    temperature, num_classes, chunk_size, bank_chunk); a tie goes to the lower class."""
    return knn_scores(train_feats, train_labels, query_feats, **options).argmax(dim=1)


def knn_accuracy(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
    bank_chunk: int = BANK_CHUNK,
) -> float:
    """Top-1 accuracy in [0, 1] of the weighted kNN classifier (see knn_scores) on a test set;
    a query whose true class ties with another for the most votes counts as wrong."""
    if len(test_feats) != len(test_labels):
        raise SelfsupError(
            f"kNN test set has {len(test_feats)} features but {len(test_labels)} labels"
        )
    if len(test_feats) == 0:
        raise SelfsupError("kNN accuracy needs at least one test feature")
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    scores = knn_scores(
        train_feats,
        train_labels,
        test_feats,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        chunk_size=chunk_size,
        bank_chunk=bank_chunk,
    )
    return label_hits(scores, test_labels).float().mean().item()


def knn_protocol(features: Features) -> dict[str, float]:
    """The `knn` protocol: weighted kNN top-1 of the queries against the labelled bank."""
    return {
        "knn_top1": knn_accuracy(
            features.bank,
            features.bank_labels,
            features.queries,
            features.query_labels,
            k=features.knn_k,
            temperature=features.knn_t,
            bank_chunk=BANK_CHUNK,
        )
    }
