"""Sentence sources: text files, CSV/TSV columns, STS-format pair files, WordNet glosses.

Sentences are held as Python strings (tokenised once, by the run's encoder, into token ids).
STS files also give pairs with gold similarity scores, which the `sts` protocol scores; each
distinct sentence is stored once and the pairs index into them, so it is embedded once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from selfsup.data.images import DataSplits
from selfsup.data.options import LoadOptions
from selfsup.errors import SelfsupError

WORDNET_DIR = "/usr/share/wordnet"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
STS_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}


@dataclass
class SentencePairs:
    """Pairs of sentences (indices into a TextData's sentences) with gold similarity scores."""

    first: torch.Tensor  # int64 (P,)
    second: torch.Tensor  # int64 (P,)
    scores: torch.Tensor  # float32 (P,)
    genres: list[str] | None = None

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class TextData:
    """N sentences, optional labels for evaluation, optional scored pairs among them."""

    sentences: list[str]
    labels: torch.Tensor | None
    classes: list[str] | None
    name: str
    pairs: SentencePairs | None = None

    def __post_init__(self) -> None:
        if not self.sentences:
            raise SelfsupError(f"{self.name} holds no sentences")
        if self.labels is not None and self.labels.shape != (len(self.sentences),):
            raise ValueError(
                f"labels must be shaped ({len(self.sentences)},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.sentences)

    def subset(self, index: torch.Tensor) -> TextData:
        """The sentences (and labels) at `index`; a pair is kept, re-indexed, when both of its
        sentences are kept."""
        positions = index.tolist()
        pairs = None
        if self.pairs is not None:
            new = torch.full((len(self.sentences),), -1, dtype=torch.long)
            new[torch.as_tensor(positions, dtype=torch.long)] = torch.arange(len(positions))
            first, second = new[self.pairs.first], new[self.pairs.second]
            keep = (first >= 0) & (second >= 0)
            if bool(keep.any()):
                genres = self.pairs.genres
                pairs = SentencePairs(
                    first[keep],
                    second[keep],
                    self.pairs.scores[keep],
                    None
                    if genres is None
                    else [g for g, k in zip(genres, keep.tolist(), strict=True) if k],
                )
        return TextData(
            sentences=[self.sentences[i] for i in positions],
            labels=None if self.labels is None else self.labels[index],
            classes=self.classes,
            name=self.name,
            pairs=pairs,
        )


def _read_text(path: Path) -> str:
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise SelfsupError(f"text file {path} {what}; give the path of a UTF-8 text file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SelfsupError(
            f"{path} is not UTF-8 text (undecodable byte at line {line}); convert it to UTF-8"
        ) from None


def load_text_file(path: str | None, options: LoadOptions) -> DataSplits:
    """`text:FILE`: one sentence a line, blank lines skipped; no test split."""
    assert path is not None, "the registry requires text:FILE"
    file = Path(path).expanduser()
    sentences = [line.strip() for line in _read_text(file).splitlines() if line.strip()]
    if not sentences:
        raise SelfsupError(f"{file} holds no sentences (every line is blank)")
    return DataSplits(TextData(sentences, None, None, f"text:{file}"), None)


def load_csv_column(path: str | None, options: LoadOptions) -> DataSplits:
    """`csv:FILE#COLUMN`: one column of a CSV (,) or TSV (tab, for .tsv/.tab) file.

    COLUMN is a header name, or a 0-based index (then every row is data when the first row
    does not hold that name).
    """
    assert path is not None, "the registry requires csv:FILE#COLUMN"
    file_part, sep, column = path.rpartition("#")
    if not sep or not column:
        raise SelfsupError(
            f"csv source needs a column: write csv:FILE#COLUMN (a header name or 0-based "
            f"index), got csv:{path}"
        )
    file = Path(file_part).expanduser()
    delimiter = "\t" if file.suffix.lower() in (".tsv", ".tab") else ","
    rows = list(csv.reader(io.StringIO(_read_text(file)), delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise SelfsupError(f"{file} holds no rows")
    header = [cell.strip() for cell in rows[0]]
    if column in header:
        index, body = header.index(column), rows[1:]
    elif column.isdigit():
        index, body = int(column), rows
    else:
        raise SelfsupError(
            f"{file} has no column {column!r}; its columns are: {', '.join(header)} "
            f"(or give a 0-based index)"
        )
    sentences = [r[index].strip() for r in body if len(r) > index and r[index].strip()]
    if not sentences:
        raise SelfsupError(f"column {column!r} of {file} holds no sentences")
    return DataSplits(TextData(sentences, None, None, f"csv:{file}#{column}"), None)


def load_sts_file(path: str | Path) -> TextData:
    """One STS-format file: tab-separated, 1-based columns 1 genre, 5 score, 6 and 7 the
    sentences; extra trailing columns are ignored, quotes are plain characters."""
    file = Path(path).expanduser()
    index: dict[str, int] = {}
    first, second, scores, genres = [], [], [], []
    for number, line in enumerate(_read_text(file).splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < 7:
            raise SelfsupError(
                f"{file} line {number} has {len(cells)} tab-separated columns; STS files have "
                "at least 7 (genre, file, year, id, score, sentence 1, sentence 2)"
            )
        try:
            score = float(cells[4])
        except ValueError:
            raise SelfsupError(
                f"{file} line {number}: score {cells[4]!r} is not a number"
            ) from None
        a, b = cells[5].strip(), cells[6].strip()
        first.append(index.setdefault(a, len(index)))
        second.append(index.setdefault(b, len(index)))
        scores.append(score)
        genres.append(cells[0].strip())
    if not scores:
        raise SelfsupError(f"{file} holds no sentence pairs")
    pairs = SentencePairs(torch.tensor(first), torch.tensor(second), torch.tensor(scores), genres)
    return TextData(list(index), None, None, f"sts:{file}", pairs)


def load_sts(path: str | None, options: LoadOptions) -> DataSplits:
    """`sts:DIR` (sts-train.csv + sts-test.csv) or `sts:FILE` (one file, no test split)."""
    assert path is not None, "the registry requires sts:DIR or sts:FILE"
    root = Path(path).expanduser()
    if root.is_file():
        return DataSplits(load_sts_file(root), None)
    if not root.is_dir():
        raise SelfsupError(f"STS path {root} does not exist; give a folder or an STS file")
    missing = [
        name for name in (STS_FILES["train"], STS_FILES["test"]) if not (root / name).is_file()
    ]
    if missing:
        raise SelfsupError(f"{root} lacks {', '.join(missing)} (STS Benchmark layout)")
    return DataSplits(
        load_sts_file(root / STS_FILES["train"]),
        load_sts_file(root / STS_FILES["test"]),
        test_from=STS_FILES["test"],
    )


def wordnet_sentences(line: str) -> list[str]:
    """The gloss and the quoted examples of one WordNet data line (after its `|`)."""
    _, sep, gloss = line.partition("|")
    if not sep:
        return []
    found = []
    for part in gloss.split(";"):
        text = part.strip().strip('"').strip()
        if text:
            found.append(text)
    return found


def load_wordnet(path: str | None, options: LoadOptions) -> DataSplits:
    """`wordnet[:DIR]`: glosses and example sentences of WordNet's data files, deduplicated."""
    root = Path(path or WORDNET_DIR).expanduser()
    files = [root / name for name in WORDNET_FILES if (root / name).is_file()]
    if not files:
        raise SelfsupError(
            f"no WordNet data files ({', '.join(WORDNET_FILES)}) in {root}; install them with "
            "`apt-get install wordnet-base` or give wordnet:DIR"
        )
    sentences: dict[str, None] = {}
    for file in files:
        for line in _read_text(file).splitlines():
            if line.startswith("  "):  # the licence header
                continue
            sentences.update(dict.fromkeys(wordnet_sentences(line)))
    return DataSplits(TextData(list(sentences), None, None, f"wordnet:{root}"), None)
