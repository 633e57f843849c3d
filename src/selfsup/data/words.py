"""Words: the tokenizer, the vocabulary with `min_count`, and the dictd corpus source (GCIDE).

Word vectors read text as lower-cased words (letters, with an inner apostrophe: "don't");
digits and punctuation separate words. The vocabulary keeps the words seen at least
`min_count` times, most frequent first (word2vec.c's SortVocab order).
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from selfsup.config import DataConfig
from selfsup.data.split import DataSplits
from selfsup.data.text import TextData
from selfsup.errors import SelfsupError

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
GCIDE_FILE = "/usr/share/dictd/gcide.dict.dz"
# dictd markup of GCIDE: "[1913 Webster]" source tags, "\A*buse"\" pronunciations, {links}
_SOURCE_TAG = re.compile(r"\[[^\]\n]*\]")
_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\")
_PARAGRAPH = re.compile(r"\n\s*\n")


def words(sentence: str) -> list[str]:
    """The lower-cased words of `sentence`, in order."""
    return WORD.findall(sentence.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Words seen at least `min_count` times, most frequent first, with their counts."""

    words: tuple[str, ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str) -> int | None:
        """The word's row, or None when it is not in the vocabulary."""
        return self._index.get(word)  # type: ignore[attr-defined]

    def __contains__(self, word: object) -> bool:
        return word in self._index  # type: ignore[attr-defined]


def build_vocabulary(sentences: Iterable[str], min_count: int) -> Vocabulary:
    """Count the words of `sentences` and keep those seen `min_count` times or more.

    An empty result (min_count above every count) or a single word (no context to learn from)
    is an error that names the counts, before anything trains.
    """
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(words(sentence))
    if not counts:
        raise SelfsupError("the corpus holds no words (letters a-z); give English text")
    kept = sorted(
        ((c, w) for w, c in counts.items() if c >= min_count), key=lambda t: (-t[0], t[1])
    )
    if not kept:
        raise SelfsupError(
            f"the vocabulary is empty: no word occurs min_count={min_count} times (the most "
            f"frequent, {counts.most_common(1)[0][0]!r}, occurs {counts.most_common(1)[0][1]}); "
            "lower --set method.min_count or give a larger corpus"
        )
    if len(kept) < 2:
        raise SelfsupError(
            f"the vocabulary holds one word ({kept[0][1]!r}) at min_count={min_count}: word "
            "vectors learn from the words around each word, and there are none; give a corpus "
            "of more than one distinct word (or lower method.min_count)"
        )
    return Vocabulary(tuple(w for _, w in kept), tuple(c for c, _ in kept))


def gcide_paragraphs(text: str) -> list[str]:
    """The paragraphs of a GCIDE dictd file (definitions, quotations, synonyms), markup
    stripped and whitespace collapsed, in order."""
    text = _PRONUNCIATION.sub(" ", _SOURCE_TAG.sub(" ", text))
    text = text.replace("{", "").replace("}", "")
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH.split(text))
    return [p for p in paragraphs if WORD.search(p.lower())]


def load_dictd(path: str | None, options: DataConfig) -> DataSplits:
    """`gcide[:FILE]`: the paragraphs of a dictd dictionary (`.dict.dz` or `.dict`), one sentence
    each; default the Collaborative International Dictionary of English (`dict-gcide`)."""
    file = Path(path or GCIDE_FILE).expanduser()
    if not file.is_file():
        raise SelfsupError(
            f"no dictd file at {file}; install GCIDE with `apt-get install dict-gcide` or give "
            "gcide:FILE (a .dict.dz or .dict file)"
        )
    opener = gzip.open if file.suffix == ".dz" else open
    try:
        with opener(file, "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as err:
        raise SelfsupError(f"cannot read the dictd file {file}: {err}") from None
    paragraphs = gcide_paragraphs(text)
    if not paragraphs:
        raise SelfsupError(f"{file} holds no text")
    return DataSplits(TextData(paragraphs, None, None, f"gcide:{file}"), None)
