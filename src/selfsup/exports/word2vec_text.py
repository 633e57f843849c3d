"""`--format word2vec`: a word-vector table (kind `word-vectors`) in word2vec.c's text format,
which gensim (`KeyedVectors.load_word2vec_format(path)`), fastText and most word-vector tools
read: a header line `words dim`, then one `word v1 ... vdim` line a word, most frequent first.

Written here, not with gensim, so that exporting needs no gensim: the format is two lines of
code. Values are written with 9 significant digits, which give float32 back exactly. The file
holds word vectors only: a sentence's vector (the average of its known words, SIF-weighted when
the run says so) is the user's to compute, as the model card says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfsup.errors import SelfsupError
from selfsup.exports.formats import ExportOptions

VECTORS = "vectors.txt"


def check(encoder: Any, options: ExportOptions) -> None:
    if encoder.kind != "word-vectors":
        raise SelfsupError(
            f"--format word2vec takes word-vector tables (method word2vec, kind 'word-vectors'); "
            f"this run's encoder is of kind {encoder.kind!r}: export it with --format onnx or "
            "--format selfsup"
            + (" (or --format sentence-transformers)" if encoder.kind == "text" else "")
        )
    spaced = [w for w in encoder.vocabulary.words if not w or len(w.split()) != 1 or w != w.strip()]
    if spaced:
        raise SelfsupError(
            f"{len(spaced)} vocabulary word(s) hold white space ({spaced[0]!r}), which the "
            "word2vec text format uses to separate fields: export with --format selfsup"
        )


def paths(folder: Path, encoder: Any, options: ExportOptions) -> list[Path]:
    return [folder / VECTORS]


def write(encoder: Any, folder: Path, options: ExportOptions) -> list[Path]:
    weights = encoder.vectors.weight.detach().float().cpu().numpy()
    words = encoder.vocabulary.words
    with open(folder / VECTORS, "w", encoding="utf-8", newline="\n") as out:
        out.write(f"{len(words)} {weights.shape[1]}\n")
        for word, row in zip(words, weights, strict=True):
            out.write(word + " " + " ".join(f"{v:.9g}" for v in row.tolist()) + "\n")
    return [folder / VECTORS]


def load_snippet(folder: str, encoder: Any) -> str:
    """How to load this export, for the model card."""
    return (
        "from gensim.models import KeyedVectors\n\n"
        f'vectors = KeyedVectors.load_word2vec_format("{folder}/{VECTORS}")\n'
        'vectors.most_similar("king")'
    )


def card_notes(encoder: Any) -> list[str]:
    """What the model card says before the snippet: the file holds words, not sentences."""
    sif = encoder.spec.sif
    pooled = f"the SIF-weighted average (a = {sif:g})" if sif else "the plain average"
    return [
        f"`{VECTORS}` holds {len(encoder.vocabulary):,} word vectors of {encoder.out_dim} "
        "dimensions in word2vec's text format, most frequent word first. selfsup embeds a "
        f"sentence as {pooled} of its known words' vectors; that is not in the file."
    ]
