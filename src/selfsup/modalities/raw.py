"""The raw-input baselines that a learned encoder must beat, as each modality gives them:
standardised pixels (images, the image side of pairs), TF-IDF (sentences), z-normalised series."""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.models.series_input import znormalise


def raw_pixel_features(images: Tensor, reference: Tensor | None = None) -> Tensor:
    """Flattened pixels as float, each pixel position standardized to zero mean and unit std:
    the "normalized raw pixels" baseline that a learned encoder must beat.

    The statistics come from `reference` (the training bank, so that test images do not leak
    into them) or, when it is None, from `images` themselves."""
    if images.ndim < 2 or len(images) == 0:
        raise SelfsupError(f"raw_pixel_features expects (N, ...) images, got {tuple(images.shape)}")
    x = images.flatten(1).to(torch.float32, copy=True)
    ref = x if reference is None else reference.flatten(1).to(torch.float32)
    mean, std = ref.mean(dim=0), pixel_scale(ref)  # before x changes: ref may be x
    return x.sub_(mean).div_(std)


def pixel_scale(ref: Tensor) -> Tensor:
    """Each column's std over `ref`, 1 where the column is constant there (as scikit-learn's
    StandardScaler): dividing by a clamped tiny std would blow a query's stray value in a pixel
    that is always blank in the bank up to ~1e7 and let it decide that query's neighbours."""
    std = ref.std(dim=0, correction=0)
    return torch.where(std < 1e-6, torch.ones_like(std), std)


def znormalised_series(series: Tensor, mask: Tensor | None) -> Tensor:
    """(N, C, T) series each z-normalised per channel over its valid steps (`mask` (N, T), None:
    all valid), padding zero: the raw-signal baselines' input (flattened; DTW 1-NN)."""
    return znormalise(series, mask)  # what the series encoders do to their input


PIXEL_CHUNK = 4096  # query images converted to float at a time


def standardised_pixels(
    bank: Tensor, queries: Tensor, *, with_bank: bool = True, chunk: int | None = None
) -> tuple[Tensor | None, Tensor]:
    """`raw_pixel_features` of bank and of queries (statistics from the bank), with one float
    copy of the bank rather than two: the statistics come from the bank's own float rows, which
    then become its features in place; the queries are converted `chunk` rows at a time
    (default PIXEL_CHUNK), so a memory-mapped split is read a batch at a time. Equal, value for
    value, to `raw_pixel_features(bank)` and `raw_pixel_features(queries, reference=bank)`."""
    if bank.ndim < 2 or len(bank) == 0 or queries.ndim < 2:
        raise SelfsupError(
            f"standardised_pixels expects (N, ...) images, got {tuple(bank.shape)} for the bank "
            f"and {tuple(queries.shape)} for the queries"
        )
    x = bank.flatten(1).to(torch.float32, copy=True)
    mean = x.mean(dim=0)
    std = pixel_scale(x)
    chunk = chunk or PIXEL_CHUNK
    out = torch.empty(len(queries), x.shape[1])
    for start in range(0, len(queries), chunk):
        rows = queries[start : start + chunk].flatten(1).to(torch.float32, copy=True)
        out[start : start + len(rows)] = rows.sub_(mean).div_(std)
    if not with_bank:
        return None, out
    return x.sub_(mean).div_(std), out


def sample_rows(n: int, limit: int, labels: Tensor | None = None, seed: int = 0) -> Tensor:
    """Sorted positions of a seeded sample of `limit` of `n` rows, stratified by `labels` when
    given: each class keeps its share (largest remainders get the rows left over). For the
    raw-input baseline over a split too large for its dense features (`eval.raw_bank_limit`)."""
    if not 0 < limit <= n:
        raise SelfsupError(f"cannot sample {limit} of {n} rows")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    if labels is None:
        return order[:limit].sort().values
    y = labels.cpu()[order]
    _, counts = torch.unique(y, return_counts=True)  # classes in increasing order
    exact = counts.double() * limit / n
    quota = exact.floor().long()
    left = limit - int(quota.sum())
    quota[(exact - quota).argsort(descending=True, stable=True)[:left]] += 1
    grouped = y.argsort(stable=True)  # by class, each class in the random order
    starts = (counts.cumsum(0) - counts).tolist()
    keep = torch.cat([grouped[s : s + q] for s, q in zip(starts, quota.tolist(), strict=True)])
    return order[keep].sort().values


TFIDF_VOCABULARY = 20_000  # most frequent terms kept: dense rows cost 80 kB each


def tfidf_features(
    bank: list[str], queries: list[str], *, with_bank: bool = True
) -> tuple[Tensor | None, Tensor]:
    """TF-IDF vectors of bank and queries, fitted on the bank sentences, dense float32.

    The text modality's raw-input baseline: cosine of TF-IDF vectors is what a learned sentence
    encoder must beat. Rows are dense (the protocols take dense features), so the vocabulary
    is capped at the 20,000 most frequent terms; the bank's rows are made only when asked
    (kNN and the probe need them, STS does not).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer  # lazily: heavy, text only

    vectorizer = TfidfVectorizer(max_features=TFIDF_VOCABULARY, sublinear_tf=True).fit(bank)

    def dense(sentences: list[str]) -> Tensor:
        return torch.from_numpy(vectorizer.transform(sentences).astype("float32").toarray())

    return (dense(bank) if with_bank else None), dense(queries)
