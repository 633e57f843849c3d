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

from selfsup.config import DataConfig
from selfsup.data.lines import LazyLines, LineStore, should_stream
from selfsup.data.split import DataSplits, SentencePairs, Split, row_positions
from selfsup.errors import SelfsupError

WORDNET_DIR = "/usr/share/wordnet"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
STS_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}


@dataclass
class TextData(Split):
    """N sentences, optional labels for evaluation, optional scored pairs among them.

    `sentences` is a list of str, or `LazyLines` (a large `text:` file or an Arrow text column,
    read on demand): code that reads it indexes it, slices it or calls `subset`, never copies
    it whole.
    """

    sentences: list[str] | LazyLines
    labels: torch.Tensor | None
    classes: list[str] | None
    name: str
    pairs: SentencePairs | None = None
    # Supervised pairs / NLI triplets: row i of `positives` (and `negatives`, a hard negative)
    # belongs to sentence i, the anchor (supervised SimCSE's fields "positive_*", "negative_*").
    positives: list[str] | None = None
    negatives: list[str] | None = None
    # Retrieval: (query, relevant document) pairs as indices into `sentences` (scores unused).
    retrieval: SentencePairs | None = None
    note: str | None = None  # how the data was read, printed as the run's data line

    def __post_init__(self) -> None:
        if not self.sentences:
            raise SelfsupError(f"{self.name} holds no sentences")
        for what, column in (("positives", self.positives), ("negatives", self.negatives)):
            if column is not None and len(column) != len(self.sentences):
                raise ValueError(f"{what} must have one row per sentence ({len(self.sentences)})")
        if self.labels is not None and self.labels.shape != (len(self.sentences),):
            raise ValueError(
                f"labels must be shaped ({len(self.sentences)},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.sentences)

    def subset(self, index: torch.Tensor) -> TextData:
        """The sentences (and labels) at `index`; a pair is kept, re-indexed, when both of its
        sentences are kept."""
        positions, total = row_positions(index), len(self.sentences)
        pairs = None if self.pairs is None else self.pairs.subset(positions, total)
        retrieval = None if self.retrieval is None else self.retrieval.subset(positions, total)
        if isinstance(self.sentences, LazyLines):
            sentences: list[str] | LazyLines = self.sentences.subset(index)
        else:
            sentences = [self.sentences[i] for i in positions]
        return TextData(
            sentences=sentences,
            labels=None if self.labels is None else self.labels[index],
            classes=self.classes,
            name=self.name,
            pairs=pairs,
            positives=None if self.positives is None else [self.positives[i] for i in positions],
            negatives=None if self.negatives is None else [self.negatives[i] for i in positions],
            retrieval=retrieval,
            note=self.note,
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


def load_text_file(path: str | None, options: DataConfig) -> DataSplits:
    """`text:FILE`: one sentence a line, blank lines skipped; no test split.

    A file above `data.stream_text`'s threshold (auto: 256 MB) is streamed instead: see
    `load_text_stream`.
    """
    assert path is not None, "the registry requires text:FILE"
    file = Path(path).expanduser()
    if file.is_file() and should_stream(file, options.stream_text):
        return load_text_stream(file)
    sentences = [line.strip() for line in _read_text(file).splitlines() if line.strip()]
    if not sentences:
        raise SelfsupError(f"{file} holds no sentences (every line is blank)")
    return DataSplits(TextData(sentences, None, None, f"text:{file}"), None)


HELDOUT_LINES = 5_000  # a streamed file's last lines held out for evaluation (at most 10 %)


def load_text_stream(file: Path) -> DataSplits:
    """A large `text:FILE` as a `LineStore`: lines indexed once, read on demand.

    Unlike the eager loader it holds out the file's LAST min(5000, 10 %) non-blank lines as the
    test split (evaluation then embeds those, not the whole corpus) and does not de-duplicate
    (neither does the eager loader); the run's data line says so.
    """
    store = LineStore.open(file)
    n = len(store)
    if n == 0:
        raise SelfsupError(f"{file} holds no sentences (every line is blank)")
    held = min(HELDOUT_LINES, n // 10)
    size = file.stat().st_size / 2**20
    where = getattr(store.offsets, "filename", None) or "memory"
    note = (
        f"text:{file} streamed ({size:,.1f} MB, {n:,} non-blank lines read on demand, "
        f"no de-duplication; line index in {where})"
    )
    if held == 0:
        data = TextData(store, None, None, f"text:{file}", note=note + "; no held-out lines")
        return DataSplits(data, None)
    note += f"; its last {held:,} lines held out for evaluation"
    train = TextData(
        LineStore(file, store.offsets[: n - held]), None, None, f"text:{file}", note=note
    )
    test = TextData(
        LineStore(file, store.offsets[n - held :]), None, None, f"text:{file}", note=note
    )
    return DataSplits(train, test, test_from=f"the last {held:,} lines of the file (streamed)")


def load_csv_column(path: str | None, options: DataConfig) -> DataSplits:
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


def load_sts_files(paths: list[str]) -> TextData:
    """Several STS files as one: every pair scored together (the "all" Spearman over their
    union) and each pair tagged with its file's name, so `sts` also reports each file apart."""
    parts = [load_sts_file(p.strip()) for p in paths]
    names = [Path(p.strip()).name for p in paths]
    if len(set(names)) < len(names):  # the same name in two folders: keep the folder too
        names = [str(Path(p.strip()).expanduser()) for p in paths]
    index: dict[str, int] = {}
    first, second, scores, genres, files = [], [], [], [], []
    for part, name in zip(parts, names, strict=True):
        assert part.pairs is not None and part.pairs.genres is not None
        remap = torch.tensor([index.setdefault(s, len(index)) for s in part.sentences])
        first.append(remap[part.pairs.first])
        second.append(remap[part.pairs.second])
        scores.append(part.pairs.scores)
        genres += part.pairs.genres
        files += [name] * len(part.pairs)
    pairs = SentencePairs(torch.cat(first), torch.cat(second), torch.cat(scores), genres, files)
    return TextData(list(index), None, None, "sts:" + ",".join(paths), pairs)


def load_sts(path: str | None, options: DataConfig) -> DataSplits:
    """`sts:DIR` (sts-train.csv + sts-test.csv), `sts:FILE` (one file, no test split) or
    `sts:FILE1,FILE2,...` (several files evaluated together and each apart; no test split)."""
    assert path is not None, "the registry requires sts:DIR or sts:FILE"
    if "," in path:
        return DataSplits(load_sts_files([p for p in path.split(",") if p.strip()]), None)
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


def load_wordnet(path: str | None, options: DataConfig) -> DataSplits:
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


# Header names recognised when a pair/triplet file's columns are not named in the spec: the
# SimCSE NLI file (sent0, sent1, hard_neg), sentence-transformers' (anchor, positive, negative),
# and common alternatives. The first match, in this order, wins.
ANCHOR_COLUMNS = ("sent0", "anchor", "premise", "sentence1", "query", "text", "question")
POSITIVE_COLUMNS = ("sent1", "positive", "entailment", "hypothesis", "sentence2", "pos")
NEGATIVE_COLUMNS = ("hard_neg", "negative", "contradiction", "sentence3", "neg")
QUERY_COLUMNS = ("query", "question", "anchor", "sent0", "sentence1", "text")
DOCUMENT_COLUMNS = ("document", "doc", "passage", "answer", "positive", "sent1", "sentence2")


def read_table(file: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV (,), TSV (tab, for .tsv/.tab) or JSON-lines (.jsonl) file.

    The first row of a CSV/TSV is its header; a JSONL file's header is the keys of its first
    object. Blank rows are skipped.
    """
    import json

    text = _read_text(file)
    if file.suffix.lower() in (".jsonl", ".ndjson"):
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise SelfsupError(f"{file} line {number} is not JSON: {err.msg}") from None
            if not isinstance(record, dict):
                raise SelfsupError(f"{file} line {number} is not a JSON object")
            records.append(record)
        if not records:
            raise SelfsupError(f"{file} holds no rows")
        header = list(records[0])
        return header, [[str(r.get(k, "") or "") for k in header] for r in records]
    delimiter = "\t" if file.suffix.lower() in (".tsv", ".tab") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise SelfsupError(f"{file} holds no rows")
    return [cell.strip() for cell in rows[0]], rows[1:]


def _pick_columns(
    file: Path, header: list[str], asked: list[str], roles: list[tuple[str, tuple[str, ...]]]
) -> list[int | None]:
    """Column positions for each (role, candidate names): the names given after '#' in order,
    else the first candidate the header holds. A role whose candidates are () is optional and
    absent when not found; the others are required."""
    lowered = [h.lower() for h in header]
    found: list[int | None] = []
    for i, (role, candidates) in enumerate(roles):
        if i < len(asked) and asked[i]:
            name = asked[i]
            if name in header:
                found.append(header.index(name))
            elif name.lower() in lowered:
                found.append(lowered.index(name.lower()))
            else:
                raise SelfsupError(
                    f"{file} has no column {name!r} (asked for the {role}); its columns are: "
                    f"{', '.join(header)}"
                )
            continue
        match = next((lowered.index(c) for c in candidates if c in lowered), None)
        found.append(match)
    return found


def _split_spec(path: str, form: str) -> tuple[Path, list[str]]:
    file_part, sep, columns = path.rpartition("#")
    if not sep:
        file_part, columns = path, ""
    file = Path(file_part).expanduser()
    return file, [c.strip() for c in columns.split(",")] if columns else []


def load_nli(path: str | None, options: DataConfig) -> DataSplits:
    """`nli:FILE[#ANCHOR,POSITIVE,NEGATIVE]`: NLI-format triplets for supervised SimCSE.

    Each row: a premise (anchor), an entailed hypothesis (positive) and a contradiction (hard
    negative). Columns by name after '#', else sniffed from the header (SimCSE's sent0, sent1,
    hard_neg; anchor, positive, negative; premise, entailment, contradiction). CSV, TSV or
    JSONL. Rows with an empty cell are dropped; no test split.
    """
    assert path is not None, "the registry requires nli:FILE"
    return _load_supervised(path, "nli", with_negatives=True)


def load_pairs(path: str | None, options: DataConfig) -> DataSplits:
    """`pairs:FILE[#ANCHOR,POSITIVE]`: (anchor, positive) pairs without hard negatives
    (paraphrases, question duplicates); header sniffing as for `nli`."""
    assert path is not None, "the registry requires pairs:FILE"
    return _load_supervised(path, "pairs", with_negatives=False)


LABEL_COLUMNS = ("gold_label", "label")  # raw SNLI / MultiNLI rows: one hypothesis and its label
# Raw NLI labels: SNLI/MultiNLI's words, and the Hugging Face datasets' integers (0, 1, 2).
NLI_LABELS = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"}
NLI_LABELS |= {"0": "entailment", "1": "neutral", "2": "contradiction"}
NLI_NO_LABEL = ("-", "", "-1")  # no gold label (annotators disagreed): the row is skipped


def _raw_nli_label(file: Path, header: list[str], asked: list[str]) -> int | None:
    """The label column when `file` holds raw NLI rows (premise, hypothesis, label), else None:
    named as `label=NAME` third in the spec, or sniffed (gold_label, label) when the file has
    no hard-negative column."""
    if len(asked) >= 3 and asked[2].lower().startswith("label="):
        return _pick_columns(file, header, [asked[2][6:].strip()], [("label", ())])[0]
    if len(asked) >= 3 and asked[2]:
        return None
    lowered = [h.lower() for h in header]
    if any(c in lowered for c in NEGATIVE_COLUMNS):
        return None
    return next((lowered.index(c) for c in LABEL_COLUMNS if c in lowered), None)


def group_nli(
    rows: list[tuple[str, str, str]], file: Path | str = "the NLI rows"
) -> list[tuple[str, str, str]]:
    """(premise, entailment hypothesis, contradiction hypothesis) triplets from raw NLI rows
    (premise, hypothesis, label), as SimCSE (Gao et al. 2021, sec. 4) builds its supervised
    data from SNLI + MultiNLI: the premise is the anchor, a hypothesis it entails the positive,
    one it contradicts the hard negative; neutral rows are not used.

    Rows are grouped by identical premise text, in order of first appearance; a premise with
    several entailment and contradiction hypotheses gives one triplet per (k-th entailment,
    k-th contradiction) pair, and none when it lacks either. Rows without a gold label ("-",
    "", -1) are skipped; any other unknown label is an error.
    """
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for number, (premise, hypothesis, label) in enumerate(rows, 1):
        raw = label.strip().lower()
        if raw in NLI_NO_LABEL:
            continue
        if raw not in NLI_LABELS:
            raise SelfsupError(
                f"{file} data row {number}: label {label!r} is not entailment, neutral or "
                "contradiction (nor 0, 1, 2 as in the Hugging Face SNLI/MultiNLI files, or - "
                "for no gold label); raw NLI rows cannot be grouped into triplets"
            )
        if not premise or not hypothesis or NLI_LABELS[raw] == "neutral":
            continue
        entail, contra = groups.setdefault(premise, ([], []))
        (entail if NLI_LABELS[raw] == "entailment" else contra).append(hypothesis)
    triplets = [
        (premise, e, c)
        for premise, (entail, contra) in groups.items()
        for e, c in zip(entail, contra, strict=False)
    ]
    if not triplets:
        raise SelfsupError(
            f"no premise of {file} has both an entailment and a contradiction hypothesis, so no "
            "(premise, entailment, contradiction) triplet can be grouped from its rows "
            "(rows are grouped by identical premise text)"
        )
    return triplets


def _load_raw_nli(
    file: Path, header: list[str], rows: list[list[str]], asked: list[str], label: int
) -> DataSplits:
    roles = [("premise", ANCHOR_COLUMNS), ("hypothesis", POSITIVE_COLUMNS)]
    columns = _pick_columns(file, header, asked[:2], roles)
    if None in columns:
        raise SelfsupError(
            f"{file} holds raw NLI rows (a {header[label]!r} column) but no premise or "
            f"hypothesis column among: {', '.join(header)}; name them as "
            f"nli:{file}#PREMISE,HYPOTHESIS,label={header[label]}"
        )
    p, h = columns

    def cell(r: list[str], c: int) -> str:
        return r[c].strip() if c < len(r) else ""

    triplets = group_nli(
        [(cell(r, p), cell(r, h), cell(r, label)) for r in rows],  # type: ignore[arg-type]
        file,
    )
    data = TextData(
        [t[0] for t in triplets],
        None,
        None,
        f"nli:{file}",
        positives=[t[1] for t in triplets],
        negatives=[t[2] for t in triplets],
        note=f"nli:{file}: {len(triplets):,} (premise, entailment, contradiction) triplets "
        f"grouped from {len(rows):,} raw rows (column {header[label]!r} holds the labels)",
    )
    return DataSplits(data, None)


def _load_supervised(path: str, form: str, with_negatives: bool) -> DataSplits:
    file, asked = _split_spec(path, form)
    header, rows = read_table(file)
    if with_negatives and (label := _raw_nli_label(file, header, asked)) is not None:
        return _load_raw_nli(file, header, rows, asked, label)
    roles = [("anchor", ANCHOR_COLUMNS), ("positive", POSITIVE_COLUMNS)]
    if with_negatives:
        roles.append(("hard negative", NEGATIVE_COLUMNS))
    columns = _pick_columns(file, header, asked, roles)
    missing = [role for (role, _), c in zip(roles, columns, strict=True) if c is None]
    if missing:
        shape = "ANCHOR,POSITIVE,NEGATIVE" if with_negatives else "ANCHOR,POSITIVE"
        raise SelfsupError(
            f"{file} has no {' or '.join(missing)} column among: {', '.join(header)}; name the "
            f"columns as {form}:{file}#{shape}"
        )
    picked = [
        [r[c].strip() if c < len(r) else "" for c in columns]  # type: ignore[operator]
        for r in rows
    ]
    picked = [cells for cells in picked if all(cells)]
    if not picked:
        raise SelfsupError(f"{file} holds no complete {form} rows")
    data = TextData(
        [p[0] for p in picked],
        None,
        None,
        f"{form}:{file}",
        positives=[p[1] for p in picked],
        negatives=[p[2] for p in picked] if with_negatives else None,
    )
    return DataSplits(data, None)


def load_retrieval(path: str | None, options: DataConfig) -> DataSplits:
    """`retrieval:FILE[#QUERY,DOCUMENT]`: (query, relevant document) rows for the `retrieval`
    protocol. Each distinct text is stored once; the documents searched are every distinct
    document of the file, so a query may have several relevant ones (several rows)."""
    assert path is not None, "the registry requires retrieval:FILE"
    file, asked = _split_spec(path, "retrieval")
    header, rows = read_table(file)
    roles = [("query", QUERY_COLUMNS), ("document", DOCUMENT_COLUMNS)]
    columns = _pick_columns(file, header, asked, roles)
    if None in columns:
        raise SelfsupError(
            f"{file} has no query or document column among: {', '.join(header)}; name them as "
            f"retrieval:{file}#QUERY,DOCUMENT"
        )
    q, d = columns
    index: dict[str, int] = {}
    first, second = [], []
    for r in rows:
        query = r[q].strip() if q < len(r) else ""  # type: ignore[operator]
        doc = r[d].strip() if d < len(r) else ""  # type: ignore[operator]
        if query and doc:
            first.append(index.setdefault(query, len(index)))
            second.append(index.setdefault(doc, len(index)))
    if not first:
        raise SelfsupError(f"{file} holds no (query, document) rows")
    pairs = SentencePairs(torch.tensor(first), torch.tensor(second), torch.ones(len(first)))
    data = TextData(list(index), None, None, f"retrieval:{file}", retrieval=pairs)
    return DataSplits(data, None)
