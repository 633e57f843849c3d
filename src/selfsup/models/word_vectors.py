"""The word-vector table (kind `word-vectors`): one vector per vocabulary word (word2vec's input
vectors, syn0), a sentence as the average of its known words' vectors (optionally SIF-weighted,
Arora et al. 2017), nearest words and 3CosAdd analogies.

The vocabulary travels with the weights (`vocabulary.tsv`: word and count, most frequent
first), so `selfsup.load` needs nothing else. Unknown words are dropped from a sentence and
named by `unknown_words`; callers report them (`selfsup.embed` warns, and refuses a text of
no known word).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.data.words import Vocabulary, words
from selfsup.errors import SelfsupError

ASSET = "vocabulary.tsv"


class UnknownWordsWarning(UserWarning):
    """Words of a text to embed that the table has no vector for (named in the message)."""


@dataclass(frozen=True)
class WordVectorsSpec:
    """Dimension, the longest sentence kept (in words), SIF's a (0: plain average), and the
    vocabulary (saved beside the weights, not in encoder.json)."""

    kind: ClassVar[str] = "word-vectors"
    modality: ClassVar[str] = "text"  # it embeds sentences and words: the text modality's data
    dim: int = 100
    max_length: int = 1000  # word2vec.c's MAX_SENTENCE_LENGTH
    sif: float = 0.0  # Arora et al.'s a (1e-3 in their paper); 0 averages the words plainly
    vocabulary: Vocabulary | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        size = len(self.vocabulary) if self.vocabulary is not None else 0
        return {"dim": self.dim, "max_length": self.max_length, "sif": self.sif, "words": size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordVectorsSpec:
        return cls(dim=int(d["dim"]), max_length=int(d["max_length"]), sif=float(d["sif"]))


class WordVectors(nn.Module):
    """A table of word vectors; `forward` averages a sentence's known words."""

    kind: ClassVar[str] = "word-vectors"
    modality: ClassVar[str] = "text"

    def __init__(self, spec: WordVectorsSpec):
        super().__init__()
        if spec.vocabulary is None or len(spec.vocabulary) == 0:
            raise SelfsupError("a word-vector table needs a vocabulary of at least one word")
        self.spec = spec
        self.vocabulary = spec.vocabulary
        self.out_dim = spec.dim
        size = len(spec.vocabulary)
        # word2vec.c's InitNet: uniform in [-0.5, 0.5) / dim; sparse rows for SGD on a few words
        self.vectors = nn.Embedding(size, spec.dim, sparse=True)
        nn.init.uniform_(self.vectors.weight, -0.5 / spec.dim, 0.5 / spec.dim)
        counts = torch.tensor(spec.vocabulary.counts, dtype=torch.float64)
        self.register_buffer("frequency", (counts / counts.sum()).float(), persistent=False)

    # -- sentences to rows of word ids ---------------------------------------------------------

    def ids(self, sentence: str) -> list[int]:
        """The vocabulary rows of the sentence's known words, in order (unknown ones dropped)."""
        found = (self.vocabulary.index(w) for w in words(sentence))
        return [i for i in found if i is not None]

    def unknown_words(self, sentences: Sequence[str]) -> list[str]:
        """The distinct words of `sentences` outside the vocabulary, in order of appearance."""
        seen: dict[str, None] = {}
        for sentence in sentences:
            seen.update(dict.fromkeys(w for w in words(sentence) if w not in self.vocabulary))
        return list(seen)

    def tokenize_all(
        self, sentences: Sequence[str], batch_size: int = 0
    ) -> dict[str, torch.Tensor]:
        """Word ids (N, L) and mask of every sentence, cut to max_length words and padded to the
        longest; a sentence of no known word is a row of padding (its vector is zero)."""
        rows = [self.ids(s)[: self.spec.max_length] for s in sentences]
        width = max([len(r) for r in rows] + [1])
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[n, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def preprocess(self, raw: Any) -> dict[str, torch.Tensor]:
        """Word ids and mask of a word, a sentence or a list of them. Words outside the
        vocabulary are named in a warning; a text with no known word is an error."""
        sentences = [raw] if isinstance(raw, str) else list(raw)
        empty = [s for s in sentences if not self.ids(s)]
        if empty:
            raise SelfsupError(
                f"no word of {', '.join(repr(s) for s in empty[:5])} is in the vocabulary "
                f"({len(self.vocabulary):,} words seen at least min_count times in training): "
                "there is no vector to give"
            )
        unknown = self.unknown_words(sentences)
        if unknown:
            warnings.warn(
                f"{len(unknown)} word(s) outside the vocabulary, left out of the averages: "
                f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}",
                UnknownWordsWarning,
                stacklevel=2,
            )
        return self.tokenize_all(sentences)

    def count_truncated(self, sentences: Any, batch_size: int = 0) -> int:
        """How many sentences have more known words than max_length (cut by `tokenize_all`)."""
        return sum(len(self.ids(s)) > self.spec.max_length for s in sentences)

    def describe(self) -> str:
        """The start-up line of a run that trains this table."""
        pooled = f"SIF-weighted average (a={self.spec.sif:g})" if self.spec.sif else "average"
        return (
            f"word vectors: {len(self.vocabulary):,} words x {self.spec.dim}; a sentence is the "
            f"{pooled} of its known words (at most {self.spec.max_length})"
        )

    # -- vectors -------------------------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, dim): each row's average word vector (SIF-weighted when spec.sif > 0)."""
        ids, mask = batch["input_ids"], batch["attention_mask"].to(self.vectors.weight.dtype)
        if self.spec.sif > 0:
            mask = mask * (self.spec.sif / (self.spec.sif + self.frequency[ids]))
        vectors = nn.functional.embedding(ids, self.vectors.weight)
        total = (vectors * mask.unsqueeze(-1)).sum(1)
        return total / batch["attention_mask"].sum(1, keepdim=True).clamp_min(1)

    def unit_vectors(self) -> torch.Tensor:
        """(V, dim) unit-length word vectors (a zero vector stays zero)."""
        w = self.vectors.weight.detach().float()
        return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def row(self, word: str) -> int:
        """The vocabulary row of `word`; unknown: an error naming it."""
        index = self.vocabulary.index(word.lower())
        if index is None:
            raise SelfsupError(
                f"{word!r} is not in the vocabulary ({len(self.vocabulary):,} words seen at "
                "least min_count times in the training corpus)"
            )
        return index

    def nearest(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words of highest cosine to `word`, the word itself left out."""
        return self.ranked(self.unit_vectors()[self.row(word)], exclude=[self.row(word)], k=k)

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """a : b :: c : ?, by 3CosAdd (Mikolov et al. 2013): the words nearest to
        unit(b) - unit(a) + unit(c) by cosine, the three question words excluded (as gensim's
        most_similar and word2vec.c's compute-accuracy)."""
        unknown = [w for w in (a, b, c) if w.lower() not in self.vocabulary]
        if unknown:
            raise SelfsupError(
                f"analogy {a} : {b} :: {c} : ? has word(s) outside the vocabulary: "
                f"{', '.join(unknown)}"
            )
        rows = [self.row(w) for w in (a, b, c)]
        unit = self.unit_vectors()
        query = unit[rows[1]] - unit[rows[0]] + unit[rows[2]]
        return self.ranked(query, exclude=rows, k=k)

    def ranked(self, query: torch.Tensor, exclude: list[int], k: int) -> list[tuple[str, float]]:
        """The k words of highest cosine to `query`, `exclude`d rows left out."""
        scores = self.unit_vectors() @ (query / query.norm().clamp_min(1e-12))
        scores[exclude] = -float("inf")
        top = scores.topk(min(k, len(scores) - len(exclude)))
        return [
            (self.vocabulary.words[i], float(s))
            for s, i in zip(top.values, top.indices, strict=True)
        ]

    # -- export --------------------------------------------------------------------------------

    def save_assets(self, directory: Path) -> None:
        """The vocabulary, one `word<TAB>count` a line, most frequent first."""
        lines = (
            f"{w}\t{c}\n"
            for w, c in zip(self.vocabulary.words, self.vocabulary.counts, strict=True)
        )
        (Path(directory) / ASSET).write_text("".join(lines), encoding="utf-8")

    @classmethod
    def from_assets(cls, spec: WordVectorsSpec, directory: Path) -> WordVectors:
        """The table with the vocabulary saved beside its weights (weights loaded after)."""
        file = Path(directory) / ASSET
        if not file.is_file():
            raise SelfsupError(f"{directory} lacks {ASSET} (the word vectors' vocabulary)")
        pairs = [line.split("\t") for line in file.read_text(encoding="utf-8").splitlines()]
        vocabulary = Vocabulary(tuple(w for w, _ in pairs), tuple(int(c) for _, c in pairs))
        return cls(replace(spec, vocabulary=vocabulary))

    def extra_repr(self) -> str:
        return f"words={len(self.vocabulary)}, dim={self.spec.dim}, sif={self.spec.sif}"
