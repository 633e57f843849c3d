"""The text modality's report section: a few held-out sentences and their nearest sentences in
the learned space beside TF-IDF's, so that a user sees what the encoder finds similar."""

from __future__ import annotations

from typing import Any

import numpy as np

from selfsup.evaluate.features import encode_rows
from selfsup.report_parts import esc, pick_queries, subsample, top_k

BANK_LIMIT = 2_000  # sentences searched (seeded subsample; TF-IDF rows are dense)


def neighbours_section(modality: Any, encoder: Any, bank: Any, queries: Any, device: str) -> str:
    """A table: query sentence, its top neighbours by the learned encoder and by TF-IDF."""
    rng = np.random.default_rng(0)
    b_idx = subsample(len(bank), BANK_LIMIT, rng)
    chosen = pick_queries(None, len(queries), rng)
    bank_part = bank.subset(_index(b_idx))
    query_part = queries.subset(_index(chosen))

    def embed(part: Any) -> np.ndarray:
        rows = modality.tensors(part, encoder)
        return encode_rows(encoder, rows, modality.encoder_input, device=device).numpy()

    same = bank is queries
    bank_text = np.array(list(bank_part.sentences))  # a streamed file's lines, read once
    exclude = (
        [np.flatnonzero(b_idx == i) for i in chosen]
        if same
        else [np.flatnonzero(bank_text == s) for s in query_part.sentences]
    )
    tf_bank, tf_queries = modality.raw_features(bank_part, query_part)
    spaces = {
        "learned": top_k(embed(query_part), embed(bank_part), exclude),
        "TF-IDF": top_k(tf_queries.numpy(), tf_bank.numpy(), exclude),
    }
    rows = ""
    for i, sentence in enumerate(list(query_part.sentences)):
        cells = "".join(
            "<td><ol>"
            + "".join(f"<li>{esc(bank_part.sentences[j])}</li>" for j in top[i][:5])
            + "</ol></td>"
            for top in spaces.values()
        )
        rows += f"<tr><td>{esc(sentence)}</td>{cells}</tr>"
    head = "<tr><th>query</th>" + "".join(f"<th>{esc(s)}: top 5</th>" for s in spaces) + "</tr>"
    return (
        f"<p class='sub'>Held-out sentences searched among {len(b_idx)} bank sentences "
        f"(the same sentence is left out).</p><table>{head}{rows}</table>"
    )


def _index(positions: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.asarray(positions, dtype=np.int64))
