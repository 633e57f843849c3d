"""The image-caption modality's report section: retrieval as a user sees it, a few held-out
captions with the images they find and a few images with the captions they find, each query's
own pair marked, so that the zero-shot and recall figures have faces."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from selfsup.embedding import encode_rows
from selfsup.modalities.image_report import NEUTRAL, SAME, image_strip
from selfsup.report_parts import esc, note, pick_queries, subsample

POOL_LIMIT = 2_000  # pairs searched (a seeded subsample of the queries)
SHOWN = 5  # neighbours per query


def retrieval_section(encoder: Any, queries: Any, device: str) -> str:
    """Caption -> its top images, and image -> its top captions, among held-out pairs."""
    if not hasattr(encoder, "encode_text"):
        return note("the encoder has no text tower: no retrieval examples")
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

    def rank(row: np.ndarray, own: int) -> int:
        """1-based rank of the query's own pair; ties count against it (never flattering)."""
        return int((row >= row[own]).sum())

    t2i = ""
    for i in chosen:
        top = np.argsort(-sims[i], kind="stable")[:k]
        strip = image_strip([images[j] for j in top], [SAME if j == i else NEUTRAL for j in top])
        t2i += (
            f"<tr><td>{esc(part.captions[i])}</td><td><img class='px' alt='images found' "
            f"src='{strip}'></td><td class='num'>{rank(sims[i], i)}</td></tr>"
        )
    i2t = ""
    for i in chosen:
        top = np.argsort(-sims[:, i], kind="stable")[:k]
        found = "".join(
            f"<li>{'<b>' if j == i else ''}{esc(part.captions[j])}{'</b>' if j == i else ''}</li>"
            for j in top
        )
        strip = image_strip([images[i]], [NEUTRAL])
        i2t += (
            f"<tr><td><img class='px' alt='query image' src='{strip}'></td><td><ol>{found}</ol>"
            f"</td><td class='num'>{rank(sims[:, i], i)}</td></tr>"
        )
    return (
        f"<p class='sub'>Held-out pairs searched among {len(part)} ({esc(queries.name)}); a "
        f"query's own image has a green border, its own caption is bold; the last column is "
        f"the rank of its own pair (ties count against it).</p>"
        f"<h3>Caption to images</h3><table><tr><th>caption</th><th>top {k} images</th>"
        f"<th>own image's rank</th></tr>{t2i}</table>"
        f"<h3>Image to captions</h3><table><tr><th>image</th><th>top {k} captions</th>"
        f"<th>own caption's rank</th></tr>{i2t}</table>"
    )
