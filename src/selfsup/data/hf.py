"""Hugging Face datasets on disk: `hf:DIR[#image=COL,text=COL,label=COL]`, read in place.

DIR is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk` (Arrow files,
memory-mapped by `datasets.load_from_disk`), or parquet files: one `.parquet` file, or a folder
of them laid out as the hub lays them out (`train-00000-of-00004.parquet`, `test-*.parquet`,
or `train/` and `test/` sub-folders). Nothing reaches a hub.

The columns say the modality: an image column gives image data, a text column sentences, both
image-caption pairs; a label column rides along for evaluation only (class names from a
ClassLabel). Unnamed, the columns are found by their type and name (`choose_columns`); the
choice is printed. The dataset's `train` split trains (or its only split); its `test` split
(else `validation`) is the held-out split, and without one the run carves its own
(data/heldout.py) when there are labels.

Images are decoded into memory (`ImageData`, `PairData`), for sets that fit; a larger set is
written to a memory-mapped store by `selfsup prepare`, which reads `HFImageItems`. A text
column larger than `data.stream_text`'s threshold (or with stream_text=true) stays in Arrow:
`ArrowLines` reads the rows a batch needs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from selfsup import distributed
from selfsup.config import DataConfig
from selfsup.data.decode import CorruptImageError, decode_image_bytes
from selfsup.data.images import ImageData
from selfsup.data.lines import STREAM_CHOICES, STREAM_THRESHOLD, LazyLines
from selfsup.data.pairs import PairData
from selfsup.data.resize import resize_square
from selfsup.data.split import DataSplits
from selfsup.data.text import HELDOUT_LINES, TextData
from selfsup.errors import SelfsupError

ROLES = ("image", "text", "label")
# Column names taken without being named, in this order of preference.
IMAGE_NAMES = ("image", "img", "images", "picture", "photo")
TEXT_NAMES = ("text", "sentence", "caption", "content", "document")
LABEL_NAMES = ("label", "labels", "fine_label")
TEST_SPLITS = ("test", "validation", "valid", "val")  # the first found is the held-out split
PARQUET_SPLITS = ("train", *TEST_SPLITS)
BLOCK_ROWS = 1024  # image rows read from Arrow at a time while decoding
MEMORY_SHARE = 0.5  # decoded images may take this share of the machine's memory


@dataclass(frozen=True)
class Columns:
    """The columns a source reads, by role; None where the role is not used."""

    image: str | None
    text: str | None
    label: str | None

    @property
    def modality(self) -> str:
        """pair (image and text), image or text: what the samples are."""
        if self.image and self.text:
            return "pair"
        return "image" if self.image else "text"

    def describe(self) -> str:
        roles = {"image": self.image, "text": self.text, "label": self.label}
        return ", ".join(f"{role} from column '{col}'" for role, col in roles.items() if col)


# ---------------------------------------------------------------- the spec and the folder


def parse_spec(path: str) -> tuple[Path, dict[str, str]]:
    """`DIR[#role=COL,...]` -> (DIR, {role: column}); raises on a `#` part that does not
    parse. A DIR that exists with a `#` in its name is taken whole."""
    root, sep, tail = path, "", ""
    if not Path(path).expanduser().exists():
        root, sep, tail = path.rpartition("#")
        if not sep:
            root = path
    named: dict[str, str] = {}
    if sep:
        example = "hf:DIR#image=img,label=fine_label (roles: image, text, label)"
        for part in tail.split(","):
            role, eq, column = (s.strip() for s in part.partition("="))
            if not eq or not role or not column:
                raise SelfsupError(
                    f"hf:{path}: cannot read {part.strip()!r} in the columns part "
                    f"'#{tail}': write ROLE=COLUMN, as in {example}"
                )
            if role.lower() not in ROLES:
                raise SelfsupError(f"hf:{path}: unknown role {role!r}; write {example}")
            if role.lower() in named:
                raise SelfsupError(f"hf:{path}: the role {role!r} is named twice")
            named[role.lower()] = column
    return Path(root.strip()).expanduser(), named


class _Split:
    """One split of the dataset: its features, row count and columns, read in place."""

    name: str
    num_rows: int
    features: Any  # datasets.Features

    def column(self, name: str) -> Any:
        """Every row of a column as a pyarrow ChunkedArray (Arrow: memory-mapped)."""
        raise NotImplementedError

    def blocks(self, name: str) -> Iterator[Any]:
        """A column in row order, a bounded block (a pyarrow Array) at a time."""
        raise NotImplementedError

    def row(self, name: str, i: int) -> Any:
        """One value of a column, as Python."""
        raise NotImplementedError


class _ArrowSplit(_Split):
    """A split written by save_to_disk, memory-mapped by `datasets.load_from_disk`."""

    def __init__(self, name: str, dataset: Any):
        self.name, self.dataset = name, dataset
        self.num_rows, self.features = len(dataset), dataset.features
        if dataset.data.num_rows != self.num_rows:  # an indices mapping save_to_disk never writes
            raise SelfsupError(
                f"split {name} holds an indices mapping over its rows; save it again after "
                "dataset.flatten_indices()"
            )

    def column(self, name: str) -> Any:
        return self.dataset.data.column(name)

    def blocks(self, name: str) -> Iterator[Any]:
        column = self.column(name)
        for start in range(0, self.num_rows, BLOCK_ROWS):
            yield column.slice(start, BLOCK_ROWS).combine_chunks()

    def row(self, name: str, i: int) -> Any:
        return self.column(name).slice(i, 1).to_pylist()[0]


class _ParquetSplit(_Split):
    """A split held in parquet files, read a row group at a time (the last one kept)."""

    def __init__(self, name: str, files: list[Path]):
        import datasets
        import pyarrow.parquet as pq

        self.name, self.files = name, files
        self.parquet = [pq.ParquetFile(f) for f in files]
        schemas = {p.schema_arrow.remove_metadata() for p in self.parquet}
        if len(schemas) > 1:
            raise SelfsupError(
                f"the {name} parquet files do not share one schema ({files[0]} and others "
                "differ); give hf: one dataset's files"
            )
        self.features = datasets.Features.from_arrow_schema(self.parquet[0].schema_arrow)
        self.groups = [
            (f, g, p.metadata.row_group(g).num_rows)
            for f, p in enumerate(self.parquet)
            for g in range(p.num_row_groups)
        ]
        self.starts = np.cumsum([0] + [n for _, _, n in self.groups])
        self.num_rows = int(self.starts[-1])
        self._last: tuple[tuple[str, int], Any] | None = None

    def column(self, name: str) -> Any:
        import pyarrow as pa

        tables = [p.read(columns=[name]) for p in self.parquet]
        return pa.chunked_array([c for t in tables for c in t.column(name).chunks])

    def _group(self, name: str, k: int) -> Any:
        if self._last is None or self._last[0] != (name, k):
            f, g, _ = self.groups[k]
            table = self.parquet[f].read_row_group(g, columns=[name])
            self._last = ((name, k), table.column(name).combine_chunks())
        return self._last[1]

    def blocks(self, name: str) -> Iterator[Any]:
        for k in range(len(self.groups)):
            yield self._group(name, k)

    def row(self, name: str, i: int) -> Any:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self._group(name, k)[i - int(self.starts[k])].as_py()


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise SelfsupError(
            "hf: sources need the datasets package: pip install 'selfsup[scale]' (or datasets)"
        ) from None
    return datasets


def open_splits(root: Path) -> dict[str, _Split]:
    """The splits of a save_to_disk folder or of parquet files, by name (nothing decoded)."""
    datasets = _datasets()
    where = f"hf:{root}"
    if not root.exists():
        raise SelfsupError(
            f"{where}: {root} does not exist; give hf:DIR with DIR a folder written by "
            "save_to_disk, or parquet files"
        )
    if root.is_dir() and (
        (root / "dataset_dict.json").is_file() or (root / "state.json").is_file()
    ):
        try:
            loaded = datasets.load_from_disk(str(root), keep_in_memory=False)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
            raise SelfsupError(f"{where}: cannot open the saved dataset ({e})") from None
        if isinstance(loaded, datasets.DatasetDict):
            return {name: _ArrowSplit(name, ds) for name, ds in loaded.items()}
        return {"train": _ArrowSplit("train", loaded)}
    files = [root] if root.suffix == ".parquet" and root.is_file() else []
    if root.is_dir():  # DIR/*.parquet, DIR/data/train-*.parquet, DIR/train/0000.parquet
        found = [*root.glob("*.parquet"), *root.glob("*/*.parquet")]
        files = sorted(p for p in found if p.is_file())
    if not files:
        raise SelfsupError(
            f"{where}: {root} is neither a dataset folder written by save_to_disk (no "
            "dataset_dict.json or state.json) nor parquet files (no *.parquet under it)"
        )
    by_split: dict[str, list[Path]] = {}
    for f in files:
        by_split.setdefault(_parquet_split(f, root), []).append(f)
    if "" in by_split:
        if len(by_split) > 1:
            raise SelfsupError(
                f"{where}: {by_split[''][0]} names no split while other files do; name every "
                f"file as the hub does (train-*.parquet, test-*.parquet) or point hf: at one "
                "split's files"
            )
        by_split = {"train": by_split.pop("")}
    return {name: _ParquetSplit(name, group) for name, group in by_split.items()}


def _parquet_split(file: Path, root: Path) -> str:
    """The split a parquet file belongs to: its name's first word (`train-00000-of-00001`), or
    the nearest folder under `root` named after a split; "" when neither names one."""
    word = file.stem.replace("_", "-").split("-")[0].lower()
    if word in PARQUET_SPLITS:
        return word
    for parent in file.relative_to(root).parents if file != root else []:
        if parent.name.lower() in PARQUET_SPLITS:
            return parent.name.lower()
    return ""


def pick_splits(splits: dict[str, _Split], where: str) -> tuple[_Split, _Split | None]:
    """(train split, held-out split or None): `train` (or the only split) and the first of
    test, validation, valid, val."""
    if "train" in splits:
        train = splits["train"]
    elif len(splits) == 1:
        train = next(iter(splits.values()))
    else:
        raise SelfsupError(
            f"{where} holds the splits {', '.join(splits)} and none is named train; save the "
            "split to train on as 'train'"
        )
    test = next((splits[n] for n in TEST_SPLITS if n in splits and splits[n] is not train), None)
    return train, test


# ---------------------------------------------------------------- columns by role


def _kind(feature: Any) -> str:
    """image (an Image feature) | bytes | text | label | other: what a column can serve as
    (a named image column may also be bytes, or text holding paths)."""
    datasets = _datasets()
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.ClassLabel):
        return "label"
    if isinstance(feature, dict) and isinstance(feature.get("bytes"), datasets.Value):
        return "image"  # the Image feature's storage without its metadata
    if isinstance(feature, datasets.Value):
        dtype = feature.dtype
        if dtype in ("binary", "large_binary"):
            return "bytes"  # images only when named: raw bytes may hold anything
        if dtype in ("string", "large_string"):
            return "text"
        if dtype.startswith(("int", "uint")) or dtype == "bool":
            return "label"
    return "other"


def _describe_feature(feature: Any) -> str:
    datasets = _datasets()
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__ if not isinstance(feature, dict) else "struct"


def choose_columns(features: Any, named: dict[str, str], where: str) -> Columns:
    """The columns for each role: the named ones, checked for existence and type; unnamed, an
    Image column (by name, else the only one), a string column called text, sentence, caption
    ..., and a label column (ClassLabel or integers called label, else the only ClassLabel).
    Naming image or text turns the other's default off; label=none turns labels off."""
    listing = ", ".join(f"{n} ({_describe_feature(f)})" for n, f in features.items())
    kinds = {name: _kind(f) for name, f in features.items()}
    allowed = {"image": ("image", "bytes", "text"), "text": ("text",), "label": ("label", "text")}
    wanted = {
        "image": "an Image column (or encoded image bytes, or image paths)",
        "text": "a string column",
        "label": "a ClassLabel, integer or string column",
    }
    chosen: dict[str, str | None] = {}
    for role, column in named.items():
        if role == "label" and column.lower() == "none":
            chosen["label"] = None
            continue
        if column not in features:
            raise SelfsupError(f"{where} has no column {column!r}; its columns are: {listing}")
        if kinds[column] not in allowed[role]:
            raise SelfsupError(
                f"{where}: column {column!r} holds {_describe_feature(features[column])}, not "
                f"{role}s: {role}= needs {wanted[role]}; its columns are: {listing}"
            )
        chosen[role] = column
    if "image" not in chosen and "text" not in chosen:
        chosen["image"] = _default(kinds, "image", IMAGE_NAMES, where, listing)
        chosen["text"] = next(
            (n for n in TEXT_NAMES if kinds.get(n) == "text" and n != chosen["image"]), None
        )
        if chosen["image"] is None and chosen["text"] is None:
            raise SelfsupError(
                f"{where}: no image column (datasets.Image) and no text column named "
                f"{', '.join(TEXT_NAMES)}; name one, as in hf:DIR#image=COL or hf:DIR#text=COL "
                f"(its columns are: {listing})"
            )
    if "label" not in chosen:
        chosen["label"] = next((n for n in LABEL_NAMES if kinds.get(n) == "label"), None)
        if chosen["label"] is None:
            chosen["label"] = _default(kinds, "label", (), where, listing, only=True)
    return Columns(chosen.get("image"), chosen.get("text"), chosen.get("label"))


def _default(
    kinds: dict[str, str],
    kind: str,
    names: Sequence[str],
    where: str,
    listing: str,
    only: bool = False,
) -> str | None:
    """The column of `kind` with one of `names`, else the only column of that kind (a label:
    only a ClassLabel counts then); several and none named: an error (images) or None."""
    for n in names:
        if kinds.get(n) == kind:
            return n
    found = [n for n, k in kinds.items() if k == kind]
    if only:  # labels: only a ClassLabel column is taken without its name
        return None if len(found) != 1 else found[0]
    if kind == "image":
        found = [n for n in found if n not in TEXT_NAMES]
    if len(found) > 1:
        raise SelfsupError(
            f"{where} has several {kind} columns ({', '.join(found)}); name one, as in "
            f"hf:DIR#{kind}={found[0]} (its columns are: {listing})"
        )
    return found[0] if found else None


@dataclass
class HFSource:
    """An opened `hf:` spec: the folder, the chosen columns and the train / held-out splits."""

    root: Path
    columns: Columns
    train: _Split
    test: _Split | None
    ignored: list[str]  # splits neither trained on nor held out

    @property
    def where(self) -> str:
        return f"hf:{self.root}"


def open_source(path: str) -> HFSource:
    """Parse the spec, open the splits and choose the columns: every check that needs no
    decoding (the folder, the spec, the columns and their types, in every split used)."""
    root, named = parse_spec(path)
    splits = open_splits(root)
    where = f"hf:{root}"
    train, test = pick_splits(splits, where)
    columns = choose_columns(train.features, named, where)
    if test is not None:
        for column in (columns.image, columns.text, columns.label):
            if column is not None and column not in test.features:
                raise SelfsupError(
                    f"{where}: its {test.name} split has no column {column!r} (the train split "
                    f"has); its columns are: {', '.join(test.features)}"
                )
    used = {train.name} | ({test.name} if test is not None else set())
    return HFSource(root, columns, train, test, [n for n in splits if n not in used])


def hf_modality(path: str | None) -> str:
    """The modality `hf:PATH` loads (image, text or pair), from the dataset's metadata only; for
    a folder that does not exist (yet), from the roles the spec names (loading it will say)."""
    assert path is not None, "the registry requires hf:DIR"
    root, named = parse_spec(path)
    if not root.exists() and ("image" in named or "text" in named):
        return Columns(named.get("image"), named.get("text"), named.get("label")).modality
    return open_source(path).columns.modality


# ---------------------------------------------------------------- labels and text


def _labels(source: HFSource, split: _Split, classes: list[str] | None) -> tuple[Any, Any]:
    """(int64 labels or None, class names) of a split; a string column's classes are the train
    split's sorted values (pass them for the test split)."""
    column = source.columns.label
    if column is None:
        return None, None
    feature = split.features[column]
    datasets = _datasets()
    values = split.column(column)
    if _kind(feature) == "text":
        strings = values.to_pylist()
        if any(s is None for s in strings):
            raise SelfsupError(f"{source.where}: column {column!r} has rows without a label")
        classes = classes or sorted(set(strings))
        index = {name: i for i, name in enumerate(classes)}
        unknown = sorted(set(strings) - set(index))
        if unknown:
            raise SelfsupError(
                f"{source.where}: the {split.name} split's {column!r} holds classes the train "
                f"split has not: {', '.join(unknown[:5])}"
            )
        return torch.tensor([index[s] for s in strings], dtype=torch.int64), classes
    if values.null_count:
        raise SelfsupError(f"{source.where}: column {column!r} has rows without a label")
    labels = torch.from_numpy(values.to_numpy().astype(np.int64))
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
    else:
        names = [str(i) for i in range(int(labels.max()) + 1)] if len(labels) else []
    if (labels >= len(names)).any():
        raise SelfsupError(f"{source.where}: column {column!r} holds labels beyond its classes")
    return labels, names


def _missing_labels(labels: torch.Tensor | None) -> int:
    """Rows a ClassLabel marks as unlabelled (-1), as GLUE's test splits are."""
    return 0 if labels is None else int((labels < 0).sum())


@dataclass
class Labelled:
    """The labels of the splits a source uses; a held-out split that is all -1 (unlabelled,
    beside a labelled train split) is set aside, so that the run carves its own."""

    train_labels: torch.Tensor | None
    classes: list[str] | None
    test: _Split | None
    test_labels: torch.Tensor | None
    notes: list[str]


def labelled_splits(source: HFSource) -> Labelled:
    """Read the label column of the train and held-out splits (int64, shared classes); rows
    without a label (-1) elsewhere are an error."""
    train_labels, classes = _labels(source, source.train, None)
    test, test_labels, notes = source.test, None, []
    if test is not None:
        test_labels, _ = _labels(source, test, classes)
        if train_labels is not None and _missing_labels(test_labels) == test.num_rows:
            notes.append(f"its {test.name} split is unlabelled (-1): not used")
            test, test_labels = None, None
    for split, labels in ((source.train, train_labels), (test, test_labels)):
        if split is not None and _missing_labels(labels):
            raise SelfsupError(
                f"{source.where}: {_missing_labels(labels):,} rows of its {split.name} split "
                f"have no label (-1 in {source.columns.label!r}); drop them, or pass label=none"
            )
    return Labelled(train_labels, classes, test, test_labels, notes)


class ArrowLines(LazyLines):
    """A text column of an `hf:` dataset, read from Arrow a batch at a time (stripped).

    `positions` selects and orders rows (a subset is a view). Pickled, it reopens the dataset
    by its spec rather than copying the column."""

    def __init__(self, spec: str, split: str, column: Any, positions: np.ndarray | None = None):
        self.spec, self.split, self._column = spec, split, column
        self.positions = positions

    @property
    def column(self) -> Any:
        if self._column is None:
            source = open_source(self.spec)
            table = source.train if source.train.name == self.split else source.test
            assert table is not None and source.columns.text is not None
            self._column = table.column(source.columns.text)
        return self._column

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_column": None}

    def __len__(self) -> int:
        return len(self.column) if self.positions is None else len(self.positions)

    def __repr__(self) -> str:
        return f"ArrowLines(hf:{self.spec} {self.split}, {len(self)} rows)"

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range ({n} rows)")
        return self.take([i % n])[0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), 4096):
            yield from self[start : start + 4096]

    def _rows(self, index: Any) -> np.ndarray:
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, np.int64)
        return rows if self.positions is None else self.positions[rows]

    def take(self, index: Any) -> list[str]:
        return [s.strip() for s in self.column.take(self._rows(index)).to_pylist()]

    def subset(self, index: Any) -> ArrowLines:
        return ArrowLines(self.spec, self.split, self._column, self._rows(index))


def _text_rows(source: HFSource, split: _Split) -> tuple[Any, np.ndarray | None]:
    """(the text column, the positions of its non-blank rows, None when all are)."""
    import pyarrow.compute as pc

    assert source.columns.text is not None
    column = split.column(source.columns.text)
    blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0), True)
    if not pc.any(blank).as_py():
        return column, None
    return column, np.flatnonzero(~blank.to_numpy(zero_copy_only=False))


# ---------------------------------------------------------------- images


def _image_value(value: Any, root: Path, name: str) -> bytes:
    """The encoded bytes of one image cell: its bytes, or the file its path names (relative
    paths are read beside the dataset)."""
    path = None
    if isinstance(value, dict):
        path = value.get("path")
        value = value.get("bytes")
    elif isinstance(value, str):
        path, value = value, None
    if value:
        return bytes(value)
    if path:
        file = Path(path).expanduser()
        file = file if file.is_absolute() or file.exists() else root / file
        if not file.is_file():
            raise CorruptImageError(f"image {name}: its file {path} does not exist")
        return file.read_bytes()
    raise CorruptImageError(f"image {name} is empty (neither bytes nor a path)")


def _block_values(block: Any) -> list[Any]:
    """One block of an image column as Python values, bytes or paths or {bytes, path}."""
    import pyarrow as pa

    if pa.types.is_struct(block.type):
        names = [block.type.field(i).name for i in range(block.type.num_fields)]
        data = block.field("bytes").to_pylist()
        paths = block.field("path").to_pylist() if "path" in names else [None] * len(data)
        return [{"bytes": b, "path": p} for b, p in zip(data, paths, strict=True)]
    return block.to_pylist()


class HFImageItems:
    """One split's images as `selfsup prepare` reads them to write a store: `len(items)`,
    `items.name(i)`, `items.read(i)` (the encoded bytes), `items.labels`, `items.classes`.

    Picklable: each decoding process reopens the dataset (memory-mapped or parquet) itself.
    """

    def __init__(self, spec: str, split: str, labels: list[int] | None, classes: Any):
        self.spec, self.split = spec, split
        self.labels, self.classes = labels, classes
        self._table: _Split | None = None
        self._column = ""
        self.root = parse_spec(spec)[0]

    def _open(self) -> _Split:
        if self._table is None:
            source = open_source(self.spec)
            table = source.train if source.train.name == self.split else source.test
            assert table is not None and source.columns.image is not None
            self._table, self._column = table, source.columns.image
        return self._table

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_table": None}

    def __len__(self) -> int:
        return self._open().num_rows

    def name(self, i: int) -> str:
        """The image's path when the dataset keeps one, else `split/row`."""
        return self._name(self._open().row(self._column, i), i)

    def read(self, i: int) -> bytes:
        """The encoded image of row i (bytes, or its file's content)."""
        value = self._open().row(self._column, i)
        return _image_value(value, self.root, self._name(value, i))

    def _name(self, value: Any, i: int) -> str:
        path = value.get("path") if isinstance(value, dict) else value
        return str(path) if isinstance(path, str) and path else f"{self.split}/{i}"


def hf_image_items(path: str) -> dict[str, HFImageItems]:
    """The image items of `hf:PATH`'s train split and held-out split ("train", "test"), with
    labels and classes, for the store writer; an error for text sources."""
    source = open_source(path)
    if source.columns.modality != "image":
        raise SelfsupError(
            f"{source.where} reads {source.columns.describe()}: a store holds images alone; "
            f"name the image column by itself, as in hf:{source.root}#image=COL"
        )
    labels = labelled_splits(source)
    items = {"train": _items(path, source.train, labels.train_labels, labels.classes)}
    if labels.test is not None:
        items["test"] = _items(path, labels.test, labels.test_labels, labels.classes)
    return items


def _items(path: str, split: _Split, labels: Any, classes: Any) -> HFImageItems:
    return HFImageItems(path, split.name, None if labels is None else labels.tolist(), classes)


def _decode_split(
    source: HFSource, split: _Split, options: DataConfig
) -> tuple[torch.Tensor, list[int], list[str | None]]:
    """Decode a split's image column into uint8 (N, C, H, W) (RGB unless every image is grey;
    resized to --image-size N, else all must share one size); the rows kept (undecodable ones
    are left out under --skip-corrupt) and each kept row's path, if it has one."""
    assert source.columns.image is not None
    images: list[torch.Tensor] = []
    kept: list[int] = []
    paths: list[str | None] = []
    skipped: list[str] = []
    first: tuple[str, torch.Size] | None = None
    row = 0
    for block in split.blocks(source.columns.image):
        for value in _block_values(block):
            name = f"{split.name}/{row}"
            try:
                image = decode_image_bytes(_image_value(value, source.root, name), name)
            except CorruptImageError:
                if not options.skip_corrupt:
                    raise
                skipped.append(name)
                row += 1
                continue
            if options.image_size is not None:
                image = resize_square(image, options.image_size)
            elif first is None:
                first = (name, image.shape[1:])
            elif image.shape[1:] != first[1]:
                _raise_mixed_sizes(source.where, first, (name, image.shape[1:]))
            if not images:
                _check_memory(source, split, image)
            images.append(image)
            kept.append(row)
            path = value.get("path") if isinstance(value, dict) else None
            paths.append(path if isinstance(path, str) and path else None)
            row += 1
    if skipped:
        warnings.warn(
            f"{source.where}: left out {len(skipped)} undecodable image(s) (--skip-corrupt; "
            f"first: row {skipped[0]})",
            stacklevel=3,
        )
    if not images:
        raise SelfsupError(f"none of the {split.num_rows} images of {source.where} decode")
    channels = max(image.shape[0] for image in images)
    return torch.stack([im.expand(channels, -1, -1) for im in images]), kept, paths


def _check_memory(source: HFSource, split: _Split, image: torch.Tensor) -> None:
    """Refuse, before decoding the rest, a split whose decoded images would not fit in memory."""
    need = split.num_rows * 3 * image.shape[1] * image.shape[2]
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > MEMORY_SHARE * total:
        raise SelfsupError(
            f"{source.where}: its {split.num_rows:,} {split.name} images take {need / 2**30:,.1f} "
            f"GB decoded at {image.shape[2]}x{image.shape[1]}, more than half this machine's "
            f"{total / 2**30:,.1f} GB; write them to a memory-mapped store once with "
            f"`selfsup prepare hf:{source.root} --out STORE --image-size N` and train with "
            "--data store:STORE"
        )


def _raise_mixed_sizes(
    where: str, a: tuple[str, torch.Size], b: tuple[str, torch.Size]
) -> NoReturn:
    raise SelfsupError(
        f"images under {where} have different sizes: {a[0]} is {a[1][1]}x{a[1][0]}, "
        f"{b[0]} is {b[1][1]}x{b[1][0]} (width x height); pass --image-size N to resize "
        f"them all to NxN (shorter side to N, then a centre crop)"
    )


# ---------------------------------------------------------------- the loader


def load_hf(path: str | None, options: DataConfig) -> DataSplits:
    """`hf:DIR[#image=COL,text=COL,label=COL]`: the train split and the held-out split (the
    dataset's own test or validation split, or None: the run then carves one when there are
    labels) as image, text or image-caption data."""
    assert path is not None, "the registry requires hf:DIR"
    source = open_source(path)
    labels = labelled_splits(source)
    classes, test, notes = labels.classes, labels.test, labels.notes
    build = {"image": _image_split, "text": _text_split, "pair": _pair_split}[
        source.columns.modality
    ]
    train = build(source, source.train, labels.train_labels, classes, options, path)
    held = None
    if test is not None:
        held = build(source, test, labels.test_labels, classes, options, path)
    if isinstance(held, (ImageData, PairData)) and held.images.shape[1] != train.images.shape[1]:
        channels = max(train.images.shape[1], held.images.shape[1])
        train, held = (_with_channels(d, channels) for d in (train, held))
    test_from = f"its {test.name} split" if test is not None else None
    if isinstance(train, TextData) and isinstance(train.sentences, LazyLines) and held is None:
        train, held, test_from = _hold_out_last(train, notes)
    _announce(source, train, held, notes)
    return DataSplits(train, held, test_from=test_from)


def _image_split(source, split, labels, classes, options, spec) -> ImageData:
    images, kept, _ = _decode_split(source, split, options)
    labels = None if labels is None else labels[kept]
    skipped = split.num_rows - len(kept)
    return ImageData(images, labels, classes, source.where, skipped=skipped)


def _pair_split(source, split, labels, classes, options, spec) -> PairData:
    images, kept, paths = _decode_split(source, split, options)
    assert source.columns.text is not None
    captions = split.column(source.columns.text).take(np.asarray(kept)).to_pylist()
    keep = [i for i, c in enumerate(captions) if c is not None and c.strip()]
    if len(keep) < len(kept):
        warnings.warn(
            f"{source.where}: left out {len(kept) - len(keep)} {split.name} image(s) with an "
            "empty caption",
            stacklevel=3,
        )
    rows = torch.as_tensor([kept[i] for i in keep], dtype=torch.long)
    files = [paths[i] for i in keep]
    return PairData(
        images[torch.as_tensor(keep, dtype=torch.long)],
        [" ".join(captions[i].split()) for i in keep],
        None if labels is None else labels[rows],
        classes,
        source.where,
        files=None if any(f is None for f in files) else files,  # type: ignore[arg-type]
        skipped=split.num_rows - len(keep),
    )


def _text_split(source, split, labels, classes, options, spec) -> TextData:
    column, rows = _text_rows(source, split)
    if rows is not None and len(rows) == 0:
        raise SelfsupError(f"{source.where}: every {split.name} row of its text column is blank")
    kept = None if rows is None else torch.from_numpy(rows)
    labels = None if labels is None else labels if kept is None else labels[kept]
    if _stream(column, options):
        lines: LazyLines | list[str] = ArrowLines(spec, split.name, column, rows)
        note = (
            f"{source.where} {split.name}: {len(lines):,} rows read from Arrow on demand "
            f"({column.nbytes / 2**20:,.1f} MB of text)"
        )
    else:
        taken = column if rows is None else column.take(rows)
        lines, note = [s.strip() for s in taken.to_pylist()], None
    return TextData(lines, labels, classes, source.where, note=note)


def _stream(column: Any, options: DataConfig) -> bool:
    """Whether a text column stays in Arrow: stream_text=true, or auto above the threshold."""
    choice = str(options.stream_text).strip().lower()
    if choice not in STREAM_CHOICES:
        raise SelfsupError(
            f"data.stream_text must be one of {', '.join(STREAM_CHOICES)}, got "
            f"{options.stream_text!r}"
        )
    return column.nbytes > STREAM_THRESHOLD if choice == "auto" else choice == "true"


def _hold_out_last(
    train: TextData, notes: list[str]
) -> tuple[TextData, TextData | None, str | None]:
    """A streamed text column without a test split: its last min(5000, 10 %) rows are held out
    for evaluation, as for a streamed text file."""
    n = len(train)
    held = min(HELDOUT_LINES, n // 10)
    if held == 0 or train.labels is not None:  # labelled: the run's stratified carve applies
        return train, None, None
    notes.append(f"its last {held:,} rows held out for evaluation")
    index = torch.arange(n)
    return (
        train.subset(index[: n - held]),
        train.subset(index[n - held :]),
        f"the last {held:,} rows of the text column (streamed)",
    )


def _with_channels(data: Any, channels: int) -> Any:
    """Grey images of one split made RGB when the other split's are (images or pairs)."""
    if data.images.shape[1] == channels:
        return data
    return dataclasses.replace(data, images=data.images.expand(-1, channels, -1, -1).contiguous())


def _announce(source: HFSource, train: Any, held: Any, notes: list[str]) -> None:
    """One line (main process only): the columns read, the splits and what was left aside."""
    if not distributed.is_main_process():
        return
    splits = f"{len(train):,} {source.train.name}"
    if held is not None:
        splits += f", {len(held):,} held out"
    if source.ignored:
        notes.append(f"splits not used: {', '.join(source.ignored)}")
    classes = getattr(train, "classes", None)
    labels = f" ({len(classes)} classes)" if classes and train.labels is not None else ""
    extra = "".join(f"; {n}" for n in notes)
    print(f"selfsup: {source.where}: {source.columns.describe()}{labels}; {splits}{extra}")
