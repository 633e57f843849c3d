"""Pieces of the HTML report that the generic page and each modality's sections share:
escaping, notes, PNG data URIs, and the seeded choice of queries and their neighbours."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

NUM_QUERIES = 6
NUM_NEIGHBOURS = 8


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def note(text: str) -> str:
    """A highlighted paragraph saying why something is missing."""
    return f'<p class="note">{esc(text)}</p>'


def png_uri(data: bytes) -> str:
    """PNG bytes as a data URI: the page stays one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_html(fig: Any, alt: str) -> str:
    """A matplotlib figure as an inline PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img class="fig" alt="{esc(alt)}" src="{png_uri(buf.getvalue())}">'


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
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    sims = q @ b.T
    if exclude is not None:
        for row, skip in enumerate(exclude):
            sims[row, skip] = -np.inf
    k = min(NUM_NEIGHBOURS, bank.shape[0])
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]
