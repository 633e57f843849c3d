"""The image-caption modality's report section, as data: retrieval as a user sees it, a few
held-out captions with the images they find and a few images with the captions they find, each
query's own pair marked, so that the zero-shot and recall figures have faces."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from selfsup.embedding import encode_rows
from selfsup.modalities.sections import PairRetrieval, pick_queries, subsample

POOL_LIMIT = 2_000  # pairs searched (a seeded subsample of the queries)
SHOWN = 5  # neighbours per query


def retrieval_section(encoder: Any, queries: Any, device: str) -> PairRetrieval | str:
    """Caption -> its top images, and image -> its top captions, among held-out pairs."""
    if not hasattr(encoder, "encode_text"):
        return "the encoder has no text tower: no retrieval examples"
    rng = np.random.default_rng(0)
    pool = subsample(len(queries), POOL_LIMIT, rng)
    part = queries.subset(torch.from_numpy(pool)) if len(pool) < len(queries) else queries
    images = encoder.preprocess(part.images)
    image_z = encode_rows(encoder, {"image": images}, lambda b: b["image"], device=device)
    text_z = encode_rows(encoder, encoder.tokenize_all(part.captions), lambda b: b, device=device)
    image_z = torch.nn.functional.normalize(image_z, dim=1)
    text_z = torch.nn.functional.normalize(text_z, dim=1)
    sims = (text_z @ image_z.T).numpy()  # caption i vs image j; pair i is (image i, caption i)
    labels = None if part.labels is None else part.labels.numpy()
    chosen = pick_queries(labels, len(part), rng)
    k = min(SHOWN, len(part))

    def found(row: np.ndarray, own: int) -> tuple[int, np.ndarray, int]:
        """(the query, its top k, the 1-based rank of its own pair: ties count against it)."""
        return own, np.argsort(-row, kind="stable")[:k], int((row >= row[own]).sum())

    return PairRetrieval(
        images=images,
        captions=list(part.captions),
        source=queries.name,
        k=k,
        caption_to_images=[found(sims[i], i) for i in chosen],
        image_to_captions=[found(sims[:, i], i) for i in chosen],
    )
