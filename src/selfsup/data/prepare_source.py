"""`selfsup prepare SOURCE`: the rows a source spec gives a store (data/prepare.py).

Sources of encoded images (`folder:DIR`, and any added to ITEM_SOURCES, e.g. a Hugging Face
image column) are decoded by worker processes; every other image source `load_data` reads
(cifar10, npy, mnist, fashion-mnist, digits, store) is loaded as it is and resized chunk by
chunk. A labelled source without a test split gets one held out (20 %, stratified, seed 0,
as a training run would carve it), recorded in the store's index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from selfsup.config import DataConfig
from selfsup.data.folder import folder_root, list_folder
from selfsup.data.heldout import FRACTION, MIN_SAMPLES
from selfsup.data.hf import hf_image_items
from selfsup.data.images import ImageData
from selfsup.data.prepare import (
    CHUNK_ROWS,
    ImageItems,
    Prepared,
    Rows,
    Segment,
    carve_segments,
    write_store,
)
from selfsup.data.registry import load_data, source_modality
from selfsup.errors import SelfsupError

ItemSource = Callable[[str, DataConfig], tuple[dict[str, ImageItems], str]]


def folder_items(path: str, options: DataConfig) -> tuple[dict[str, ImageItems], str]:
    """folder:DIR's splits as file items, and the key of the files and their layout."""
    items, key = list_folder(folder_root(path), options.image_size)
    return dict(items), key


def hf_items(path: str, options: DataConfig) -> tuple[dict[str, ImageItems], str]:
    """hf:DIR's image column as items, and a key of the column spec, the image size and every
    data file under the dataset's folder (names, sizes, modification times)."""
    items = hf_image_items(path)
    root = Path(path.partition("#")[0]).expanduser().resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha1(f"hf {path} size={options.image_size}\n".encode())
    for file in files:
        st = file.stat()
        digest.update(f"{file.relative_to(root.parent)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return dict(items), digest.hexdigest()


# name -> (spec's PATH, options) -> ({"train": items[, "test": items]}, fingerprint)
ITEM_SOURCES: dict[str, ItemSource] = {"folder": folder_items, "hf": hf_items}


def prepare(
    source: str,
    out: str | Path,
    image_size: int,
    *,
    workers: int | None = None,
    skip_corrupt: bool = False,
    test_fraction: float | None = None,
    progress: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> Prepared:
    """Write `source`'s images at image_size x image_size into the store `out` (see
    `write_store`). test_fraction None holds out 20 % of a labelled source that has no test
    split of its own (none of an unlabelled one); 0 holds out nothing."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise SelfsupError(f"--image-size must be a positive number of pixels; got {image_size}")
    if test_fraction is not None and not 0.0 <= test_fraction < 1.0:
        raise SelfsupError(f"--test-fraction must lie in [0, 1); got {test_fraction}")
    options = DataConfig(source=source, image_size=image_size, skip_corrupt=skip_corrupt)
    name, _, path = source.partition(":")
    if name.strip().lower() in ITEM_SOURCES and path:
        items, fingerprint = ITEM_SOURCES[name.strip().lower()](path, options)
        parts: dict[str, Rows] = dict(items)
    else:
        if source_modality(source) != "image":
            raise SelfsupError(
                f"{source} holds {source_modality(source)} samples; a store holds images"
            )
        splits = load_data(DataConfig(source=source, skip_corrupt=skip_corrupt))
        parts = {"train": splits.train}  # type: ignore[dict-item]
        if splits.test is not None:
            parts["test"] = splits.test  # type: ignore[assignment]
        fingerprint = _digest(parts)
    train = parts["train"]
    if "test" in parts:
        if test_fraction:
            raise SelfsupError(
                f"{source} has a test split of its own; --test-fraction carves one only from "
                f"a source without (drop it)"
            )
        segments = [Segment(s, r, np.arange(len(r))) for s, r in parts.items()]
        test_from = None
    else:
        n, labels = len(train), train.labels
        fraction = test_fraction
        if fraction is None:
            fraction = FRACTION if labels is not None and n >= MIN_SAMPLES else 0.0
        segments, test_from = carve_segments(train, labels, fraction, n)
    return write_store(
        segments,
        out,
        source=source,
        fingerprint=fingerprint,
        image_size=image_size,
        classes=train.classes,
        test_from=test_from,
        workers=workers,
        skip_corrupt=skip_corrupt,
        progress=progress,
        chunk_rows=chunk_rows,
        on_chunk=on_chunk,
    )


def _digest(parts: dict[str, Rows]) -> str:
    """Of an in-memory source's pixels and labels: a changed file gives another store."""
    digest = hashlib.sha1()
    for split, data in parts.items():
        assert isinstance(data, ImageData)
        digest.update(f"{split} {tuple(data.images.shape)} {data.classes}\n".encode())
        for block in data.images.split(4096):
            digest.update(block.contiguous().numpy().tobytes())
        if data.labels is not None:
            digest.update(data.labels.numpy().tobytes())
    return digest.hexdigest()
