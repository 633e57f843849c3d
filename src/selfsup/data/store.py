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
    """The store's index; one clear error when the folder is not a (finished) store."""
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
        index = StoreIndex.from_dict(d)
    except (ValueError, KeyError, TypeError) as e:
        raise SelfsupError(
            f"{path} is not a readable store index ({e}); rebuild the store with `selfsup prepare`"
        ) from e
    if index.format != FORMAT or index.version != VERSION:
        raise SelfsupError(
            f"{path} is a {index.format} version {index.version} index, this selfsup reads "
            f"{FORMAT} version {VERSION}; rebuild the store with `selfsup prepare`"
        )
    return index


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
    return torch.from_numpy(np.array(labels))  # 8 bytes a row: small beside the pixels


def open_store(folder: str | Path) -> DataSplits:
    """The store's splits as ImageData whose images are views of the memory map."""
    folder = Path(folder).expanduser().resolve()
    index = read_index(folder)
    images = open_images(folder, index)
    labels = open_labels(folder, index)

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
        )

    train = split("train")
    if train is None or len(train) == 0:
        raise SelfsupError(f"the store {folder} has no train rows; rebuild it")
    return DataSplits(train=train, test=split("test"), test_from=index.test_from)


def load_store(path: str | None, options: DataConfig) -> DataSplits:
    """The `store:DIR` source: a store written by `selfsup prepare`, read in place."""
    assert path is not None, "the registry requires store:DIR"
    splits = open_store(path)
    size = splits.train.image_size
    if options.image_size is not None and options.image_size != size:
        raise SelfsupError(
            f"the store {path} holds {size} px images, the run asks for {options.image_size} "
            f"px; drop --image-size to train at {size} px, or build a store at that size with "
            f"`selfsup prepare SOURCE --out NEW_DIR --image-size {options.image_size}`"
        )
    return splits
