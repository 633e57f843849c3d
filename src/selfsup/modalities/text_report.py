"""The text modality's report section, as data: a few query sentences and their nearest
sentences by the learned encoder, by the model as loaded (before this run's training) and by
TF-IDF, so that a user sees what training changed and what a bag of words already finds."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from selfsup.embedding import encode_rows
from selfsup.errors import SelfsupError
from selfsup.modalities.sections import SentenceNeighbours, pick_queries, subsample, top_k
from selfsup.models import build_encoder

BANK_LIMIT = 2_000  # sentences searched (seeded subsample; TF-IDF rows are dense)
SHOWN = 5  # neighbours per query and space


def neighbours_section(
    modality: Any, encoder: Any, bank: Any, queries: Any, device: str
) -> SentenceNeighbours:
    """Query sentences and their top neighbours by the learned encoder, by the model as loaded
    (when its folder is still there) and by TF-IDF."""
    rng = np.random.default_rng(0)
    b_idx = subsample(len(bank), BANK_LIMIT, rng)
    chosen = pick_queries(None, len(queries), rng)
    bank_part = bank.subset(_index(b_idx))
    query_part = queries.subset(_index(chosen))

    def embed(part: Any, model: Any = encoder) -> np.ndarray:
        rows = modality.tensors(part, model)
        return encode_rows(model, rows, modality.encoder_input, device=device).numpy()

    same = bank is queries
    bank_text = np.array(list(bank_part.sentences))  # a streamed file's lines, read once
    exclude = (
        [np.flatnonzero(b_idx == i) for i in chosen]
        if same
        else [np.flatnonzero(bank_text == s) for s in query_part.sentences]
    )
    tf_bank, tf_queries = modality.raw_features(bank_part, query_part)
    spaces = {"learned": top_k(embed(query_part), embed(bank_part), exclude)}
    initial, name = _as_loaded(encoder)
    if initial is not None:
        spaces[name] = top_k(embed(query_part, initial), embed(bank_part, initial), exclude)
    spaces["TF-IDF"] = top_k(tf_queries.numpy(), tf_bank.numpy(), exclude)
    return SentenceNeighbours(
        queries=list(query_part.sentences),
        spaces={
            space: [[bank_part.sentences[j] for j in row[:SHOWN]] for row in top]
            for space, top in spaces.items()
        },
        bank_size=len(b_idx),
        held_out=not same,
        missing=None if initial is not None else name,
    )


def _as_loaded(encoder: Any) -> tuple[Any, str]:
    """(the model as this run loaded it, before training; its column name), or (None, why)
    when its folder is gone."""
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = build_encoder(encoder.spec)
    except (SelfsupError, OSError) as err:
        return None, str(err)
    pretrained = getattr(encoder.spec, "pretrained", False)  # a word table starts random
    return model, "as loaded" if pretrained else "as loaded (random init)"


def _index(positions: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(positions, dtype=np.int64))
