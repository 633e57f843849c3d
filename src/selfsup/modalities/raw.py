"""The raw-input baselines that a learned encoder must beat, as each modality gives them:
standardised pixels (images, the image side of pairs) and TF-IDF (sentences)."""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.errors import SelfsupError


def raw_pixel_features(images: Tensor, reference: Tensor | None = None) -> Tensor:
    """Flattened pixels as float, each pixel position standardized to zero mean and unit std:
    the "normalized raw pixels" baseline that a learned encoder must beat.

    The statistics come from `reference` (the training bank, so that test images do not leak
    into them) or, when it is None, from `images` themselves."""
    if images.ndim < 2 or len(images) == 0:
        raise SelfsupError(f"raw_pixel_features expects (N, ...) images, got {tuple(images.shape)}")
    x = images.flatten(1).to(torch.float32, copy=True)
    ref = x if reference is None else reference.flatten(1).to(torch.float32)
    mean = ref.mean(dim=0)
    std = ref.std(dim=0, correction=0).clamp_min(1e-6)
    return x.sub_(mean).div_(std)


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
