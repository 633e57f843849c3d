"""An on-disk image store: every image decoded once into one raw uint8 array that training
reads through a memory map, beside a small JSON index.

A store is a folder:

- `images.u8`: N images of C x S x S uint8 pixels, row after row (C order, no header), so
  that row i starts at byte i * C * S * S and a batch is gathered from the page cache;
- `labels.npy`: int64 (N,) class indices, when the source has labels;
- `files.txt`: the source item each row came from, one a line (a path, or a shard member);
- `index.json`, written last and atomically: what the rest holds (`StoreIndex`). A folder
  without it is not a finished store.

Splits are row ranges: the train rows first, then the held-out test rows, chosen once when
the store is written and recorded here, so that no run trains on them. The process's own
(anonymous) memory does not grow with the store: its pages belong to the page cache.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits
from selfsup.errors import SelfsupError

FORMAT = "selfsup-image-store"
VERSION = 1
INDEX_FILE = "index.json"
IMAGES_FILE = "images.u8"
LABELS_FILE = "labels.npy"
FILES_FILE = "files.txt"


@dataclass
class StoreIndex:
    """What a store holds: `shape` (N, C, S, S) of images.u8, the row range of each split,
    the classes when labelled, where it came from and a fingerprint of that source."""

    shape: tuple[int, int, int, int]
    splits: dict[str, tuple[int, int]]  # "train" and optionally "test": [start, stop) rows
    source: str  # the source spec the store was decoded from
    fingerprint: str  # of the source's items (names, sizes, times) and the decode settings
    labelled: bool = False
    classes: list[str] | None = None
    skipped: list[str] = field(default_factory=list)  # undecodable items left out
    test_from: str | None = None  # how the test rows were chosen, when not the source's own
    format: str = FORMAT
    version: int = VERSION

    @property
    def image_size(self) -> int:
        return self.shape[2]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoreIndex:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["shape"] = tuple(known["shape"])
        known["splits"] = {name: tuple(rows) for name, rows in known["splits"].items()}
        return cls(**known)


def is_store(folder: str | Path) -> bool:
    """Whether `folder` holds a finished store (its index exists)."""
    return (Path(folder) / INDEX_FILE).is_file()


def write_index(folder: str | Path, index: StoreIndex) -> None:
    """Write index.json atomically (a temporary file, then a rename): the store's last step."""
    path = Path(folder) / INDEX_FILE
    tmp = path.with_name(f"{INDEX_FILE}.{os.getpid()}.tmp")
    tmp.write_text(index.to_json())
    os.replace(tmp, path)


def read_index(folder: str | Path) -> StoreIndex:
    """The store's index, checked against itself (shape, split ranges); one clear error when
    the folder is not a (finished) store or its index cannot be read."""
    folder = Path(folder).expanduser()
    path = folder / INDEX_FILE
    if not path.is_file():
        what = "does not exist" if not folder.exists() else f"has no {INDEX_FILE}"
        raise SelfsupError(
            f"{folder} {what}: it is not an image store (or its writing did not finish); "
            f"build one with `selfsup prepare SOURCE --out {folder} --image-size N`"
        )
    try:
        d = json.loads(path.read_text())
        if not isinstance(d, dict):
            raise TypeError(f"the JSON holds a {type(d).__name__}, not an object")
        found = (d.get("format"), d.get("version"))
        if found != (FORMAT, VERSION):
            raise SelfsupError(
                f"{path} is a {found[0]} version {found[1]} index, this selfsup reads "
                f"{FORMAT} version {VERSION}; rebuild the store with `selfsup prepare`"
            )
        index = StoreIndex.from_dict(d)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SelfsupError(
            f"{path} is not a readable store index ({type(e).__name__}: {e}); rebuild the store "
            f"with `selfsup prepare`"
        ) from e
    _check_index(path, index)
    return index


def _check_index(path: Path, index: StoreIndex) -> None:
    """The index's shape is (N, C, H, W) with C 1 or 3 (S x S when written by `selfsup
    prepare`; a folder cached at its native size may not be square), and its splits are
    `train` then optionally `test`, row ranges that lie in [0, N), do not overlap and cover
    every row."""
    shape = index.shape
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
    if len(shape) != 4 or not whole or shape[0] < 0 or shape[1] not in (1, 3) or min(shape[2:]) < 1:
        raise SelfsupError(
            f"{path} gives the images' shape as {list(shape)}, not [N, C, H, W] with C 1 or 3; "
            "rebuild the store with `selfsup prepare`"
        )
    n, splits = shape[0], index.splits
    rows = []
    for name, bounds in splits.items():
        ok = name in ("train", "test") and len(bounds) == 2
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in bounds)
        if not ok or not 0 <= bounds[0] <= bounds[1] <= n:
            raise SelfsupError(
                f"{path}: split {name!r} is rows {list(bounds)}, not a range [start, stop) of "
                f"the store's {n:,} rows named train or test; rebuild the store with "
                "`selfsup prepare`"
            )
        rows.append((bounds[0], bounds[1], name))
    rows.sort()
    start = 0
    for first, stop, name in rows:
        if first != start:
            problem = "overlaps the split before it" if first < start else "leaves rows "
            if first > start:
                problem += f"{start:,} to {first - 1:,} in no split"
            raise SelfsupError(
                f"{path}: split {name!r} (rows {first:,} to {stop:,}) {problem}; the splits "
                f"must cover the store's {n:,} rows once each: rebuild it with `selfsup prepare`"
            )
        start = stop
    if start != n:
        raise SelfsupError(
            f"{path}: the splits end at row {start:,} but the store holds {n:,} rows; they must "
            "cover every row once: rebuild it with `selfsup prepare`"
        )


def open_images(folder: str | Path, index: StoreIndex) -> torch.Tensor:
    """images.u8 as a read-only (N, C, S, S) uint8 tensor over a memory map (nothing is read
    until a row is used); an error when the file's size does not match the index."""
    path = Path(folder) / IMAGES_FILE
    expected = int(np.prod(index.shape))
    size = path.stat().st_size if path.is_file() else None
    if size != expected:
        found = "is missing" if size is None else f"holds {size:,} bytes"
        raise SelfsupError(
            f"{path} {found}, but its index says {index.shape[0]:,} images of "
            f"{' x '.join(map(str, index.shape[1:]))} ({expected:,} bytes): the store is "
            f"truncated or its files do not belong together; rebuild it with `selfsup prepare`"
        )
    if expected == 0:
        return torch.empty(index.shape, dtype=torch.uint8)
    array = np.memmap(path, dtype=np.uint8, mode="r", shape=index.shape)
    with warnings.catch_warnings():  # the tensor is read-only; nothing in selfsup writes to it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def open_labels(folder: str | Path, index: StoreIndex) -> torch.Tensor | None:
    """labels.npy as int64 (N,), or None for an unlabelled store."""
    if not index.labelled:
        return None
    path = Path(folder) / LABELS_FILE
    try:
        labels = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise SelfsupError(
            f"cannot read {path} ({e}); rebuild the store with `selfsup prepare`"
        ) from e
    if labels.shape != (index.shape[0],) or labels.dtype != np.int64:
        raise SelfsupError(
            f"{path} holds {labels.dtype} {labels.shape}, its index says int64 "
            f"({index.shape[0]},); rebuild the store with `selfsup prepare`"
        )
    labels = torch.from_numpy(np.array(labels))  # 8 bytes a row: small beside the pixels
    if (
        index.classes is not None
        and len(labels)
        and not (0 <= int(labels.min()) and int(labels.max()) < len(index.classes))
    ):
        raise SelfsupError(
            f"{path} holds labels from {int(labels.min())} to {int(labels.max())}, but its "
            f"index names {len(index.classes)} classes; rebuild the store with `selfsup prepare`"
        )
    return labels


def check_files(folder: str | Path, index: StoreIndex) -> None:
    """files.txt, when present, names one source item per row: its lines are counted in
    binary blocks (a few tens of MB for a million rows), its text is not parsed."""
    path = Path(folder) / FILES_FILE
    if not path.is_file():
        return
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"  # a last line without its newline
    if lines != index.shape[0]:
        raise SelfsupError(
            f"{path} names {lines:,} source items, but the store holds {index.shape[0]:,} "
            "rows: its files do not belong together; rebuild it with `selfsup prepare`"
        )


def open_store(folder: str | Path) -> DataSplits:
    """The store's splits as ImageData whose images are views of the memory map.

    Every check reads only sizes, the index and the labels (8 bytes a row), never the pixels.
    """
    folder = Path(folder).expanduser().resolve()
    index = read_index(folder)
    images = open_images(folder, index)
    labels = open_labels(folder, index)
    check_files(folder, index)

    def split(name: str) -> ImageData | None:
        if name not in index.splits:
            return None
        start, stop = index.splits[name]
        return ImageData(
            images=images[start:stop],
            labels=None if labels is None else labels[start:stop],
            classes=index.classes,
            name=f"store:{folder}",
            skipped=len(index.skipped),
            memory_mapped=True,
        )

    train = split("train")
    if train is None or len(train) == 0:
        raise SelfsupError(f"the store {folder} has no train rows; rebuild it")
    return DataSplits(train=train, test=split("test"), test_from=index.test_from)


def load_store(path: str | None, options: DataConfig) -> DataSplits:
    """The `store:DIR` source: a store written by `selfsup prepare`, read in place."""
    assert path is not None, "the registry requires store:DIR"
    index = read_index(path)  # the size is checked before the store's files are opened
    size = index.image_size
    if options.image_size is not None and options.image_size != size:
        raise SelfsupError(
            f"the store {path} holds {size} px images, the run asks for {options.image_size} "
            f"px; drop --image-size to train at {size} px, or build a store at that size with "
            f"`selfsup prepare {index.source or 'SOURCE'} --out NEW_DIR --image-size "
            f"{options.image_size}` (resizing a store's images at every run would hold them "
            "all in memory)"
        )
    splits = open_store(path)
    if splits.train.labels is not None and splits.test is None:
        # carving a held-out split (data.heldout) would copy the chosen rows into memory
        raise SelfsupError(
            f"the store {path} is labelled but has no test split: a held-out split carved "
            "now would copy its rows into memory, and evaluation needs held-out queries; "
            f"rebuild it with its test rows: `selfsup prepare {index.source or 'SOURCE'} "
            f"--out NEW_DIR --image-size {index.image_size}`"
        )
    return splits
