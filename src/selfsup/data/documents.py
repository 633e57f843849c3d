"""`docs:FILE`: documents split into sentences, as consecutive sentence pairs that never cross a
document (the sentence-order methods' data).

A plain text file holds one document a line, or, when it has blank lines, paragraphs separated
by blank lines (a paragraph's lines are joined). A dictd dictionary (`.dict` or `.dict.dz`, e.g.
Debian's GCIDE, /usr/share/dictd/gcide.dict.dz) gives one document per definition paragraph,
with the headword line, bracketed etymologies and source tags removed. Every document is split
into sentences by `split_sentences`; each pair of consecutive sentences (i, i + 1) of one
document is a row: `sentences[row]` the first, `positives[row]` the second. Every tenth document
(document index 9, 19, ...) is held out whole as the test split, so no held-out sentence was
seen in training.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from selfsup.config import DataConfig
from selfsup.data.split import DataSplits
from selfsup.data.text import TextData
from selfsup.errors import SelfsupError

HELDOUT_EVERY = 10  # document k is held out when k % 10 == 9
# Words that end with a period without ending a sentence (lower case, without the period).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc cf fig figs no nos vol vols approx inc ltd co corp dept "
    "est al viz ca op ed eds pp esp gen gov lt col capt sgt rev hon mt ft".split()
)
# A candidate end: terminal punctuation, closing quotes or brackets, then whitespace and what
# can open a sentence (a capital, a digit, an opening quote or bracket).
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9])")


def _not_an_end(before: str, mark: str) -> bool:
    """Whether the period `mark` after the text `before` closes an abbreviation, an initial,
    an enumeration ("1.") or a parenthetical label ("(Zool.)") rather than a sentence."""
    if not mark.startswith("."):
        return False
    words = before.split()
    if not words:
        return True
    word = words[-1]
    if word.startswith("(") and ")" in mark:  # a parenthetical label: "(Anat.)"
        return True
    if before.count("(") > before.count(")"):  # inside brackets: "(Mil. Dict.)"
        return True
    word = word.lstrip("\"'([-")
    if not word:
        return False
    if word.lower() in ABBREVIATIONS or "." in word:  # "Dr.", "e.g.", "U.S."
        return True
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith"
        return True
    return word.isdigit() and len(word) <= 2 and len(words) == 1  # "1." opening a text


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order: ends at . ! ? (with closing quotes or brackets)
    before whitespace and a capital, digit or opening quote; not after a known abbreviation,
    an initial, a text-opening enumeration, a parenthetical label or inside an open bracket.
    Whitespace is collapsed."""
    text = " ".join(text.split())
    sentences, start = [], 0
    for match in _END.finditer(text):
        if _not_an_end(text[start : match.start()], match.group()):
            continue
        piece = text[start : match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def read_document_file(file: Path) -> str:
    """The text of a documents file (a gzip/dictzip file decompressed), or one SelfsupError."""
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "does not exist"
        raise SelfsupError(
            f"documents file {file} {what}; give docs:FILE, a UTF-8 text file of documents "
            "(one a line, or paragraphs separated by blank lines) or a dictd .dict(.dz) file"
        )
    raw = file.read_bytes()
    if file.suffix == ".dz" or raw[:2] == b"\x1f\x8b":  # dictzip is gzip
        raw = gzip.decompress(raw)
    if file.name.endswith((".dict", ".dict.dz")):  # GCIDE has a stray cp1252 byte or two
        return raw.decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SelfsupError(
            f"{file} is not UTF-8 text (undecodable byte at line {line}); convert it to UTF-8"
        ) from None


def _blocks(text: str) -> list[list[str]]:
    """The runs of non-blank lines of `text`."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def dictionary_documents(text: str) -> list[str]:
    """One document per definition paragraph of a dictd dictionary's text: a block that starts
    at column 0 opens an entry, whose headword line (and the lines that close its bracketed
    etymology) is dropped; bracketed spans ("[1913 Webster]", "[L. abdicatio.]") are removed."""
    documents = []
    for block in _blocks(text):
        if not block[0][:1].isspace():  # an entry's first block: skip its header lines
            depth, rest = 0, list(block)
            while rest:
                line = rest.pop(0)
                depth += line.count("[") - line.count("]")
                if depth <= 0:
                    break
            block = rest
        body = re.sub(r"\[[^\]]*\]", " ", " ".join(line.strip() for line in block))
        body = body.replace("{", "").replace("}", "")  # GCIDE's cross-reference markup
        body = " ".join(body.split())
        if body:
            documents.append(body)
    return documents


def text_documents(text: str) -> list[str]:
    """Paragraphs (runs of lines, joined) when blank lines separate several of them, else one
    document a line."""
    blocks = _blocks(text)
    if len(blocks) > 1:
        return [" ".join(line.strip() for line in block) for block in blocks]
    return [line.strip() for line in text.splitlines() if line.strip()]


def document_pairs(documents: list[list[str]]) -> tuple[list[str], list[str]]:
    """(first, second) sentences of every consecutive pair within each document, in order."""
    first, second = [], []
    for sentences in documents:
        first += sentences[:-1]
        second += sentences[1:]
    return first, second


def load_documents(path: str | None, options: DataConfig) -> DataSplits:
    """`docs:FILE`: consecutive sentence pairs of the documents in FILE (see the module)."""
    assert path is not None, "the registry requires docs:FILE"
    file = Path(path).expanduser()
    text = read_document_file(file)
    is_dictionary = file.name.endswith((".dict", ".dict.dz"))
    documents = dictionary_documents(text) if is_dictionary else text_documents(text)
    if not documents:
        raise SelfsupError(f"{file} holds no documents (every line is blank)")
    split = [split_sentences(d) for d in documents]
    kept = [(k, s) for k, s in enumerate(split) if len(s) >= 2]
    if not kept:
        raise SelfsupError(
            f"no document of {file} has two sentences ({len(documents):,} documents of one "
            "sentence each), so no pair of consecutive sentences can be formed; give documents "
            "of several sentences (one document a line, or paragraphs separated by blank lines)"
        )
    train_docs = [s for k, s in kept if k % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    test_docs = [s for k, s in kept if k % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    if not train_docs:  # too few documents to hold any out
        train_docs, test_docs = test_docs, []
    note = (
        f"docs:{file}: {len(kept):,} of {len(documents):,} documents have two or more sentences "
        f"({sum(len(s) for _, s in kept):,} sentences); every {HELDOUT_EVERY}th document held out"
    )

    def split_data(docs: list[list[str]]) -> TextData:
        first, second = document_pairs(docs)
        return TextData(first, None, None, f"docs:{file}", positives=second, note=note)

    train = split_data(train_docs)
    if not test_docs:
        return DataSplits(train, None)
    held = f"{len(test_docs):,} held-out documents (every {HELDOUT_EVERY}th)"
    return DataSplits(train, split_data(test_docs), test_from=held)
