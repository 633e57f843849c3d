"""A folder of image files: class sub-folders give labels, a flat folder is unlabeled, and
split sub-folders (train/, with test/, val/, valid/ or validation/) give the splits.
Decoded once into an image store in the cache (data/prepare.py), then read from its memory map."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfsup.config import DataConfig
from selfsup.data.cache import cache_store, fingerprint
from selfsup.data.decode import DECODER_VERSION, IMAGE_EXTENSIONS
from selfsup.data.images import ImageData
from selfsup.data.prepare import FileItems, Segment, write_store
from selfsup.data.split import DataSplits
from selfsup.data.store import open_store, read_index
from selfsup.errors import SelfsupError

_TRAIN_FOLDER = "train"
# Held-out split folder names, the preferred first when several exist.
_TEST_FOLDERS = ("test", "val", "valid", "validation")


@dataclass
class _Listing:
    """The image files of one split, in a fixed order, with their class indices if labeled."""

    folder: Path
    files: list[str]
    labels: list[int] | None
    classes: list[str] | None


def load_folder(path: str | None, options: DataConfig) -> DataSplits:
    """Every image under DIR, decoded once into an image store in the cache (one per folder
    and size) and read from it through a memory map: views of one file, not a copy."""
    assert path is not None, "the registry requires folder:DIR"
    root = folder_root(path)
    items, key = list_folder(root, options.image_size)
    segments = [Segment(split, part, np.arange(len(part))) for split, part in items.items()]
    out = cache_store(root, options.image_size)
    try:
        splits, skipped = _cached_store(segments, out, root, key, options)
    except OSError as e:  # an unwritable cache: decode into a temporary store, then memory
        warnings.warn(f"could not write the decoded-image cache {out}: {e}", stacklevel=3)
        with tempfile.TemporaryDirectory() as tmp:
            splits, skipped = _cached_store(segments, Path(tmp) / "store", root, key, options)
            splits = DataSplits(*(_in_memory(s) for s in (splits.train, splits.test)))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} undecodable image(s) under {root} (first: {skipped[0]})",
            stacklevel=3,
        )
    return splits


def folder_root(path: str) -> Path:
    """The folder of folder:DIR, resolved; an error when it is not one."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise SelfsupError(f"image folder {root} {what}; give folder:DIR with DIR a folder")
    return root


def list_folder(root: Path, image_size: int | None) -> tuple[dict[str, FileItems], str]:
    """The image files of each split (train, and test when the folder has one) as items, and
    the key of their contents: the files' fingerprint, the decoder's version and each split's
    folder and classes (a store written before a layout or decoder fix is stale)."""
    listings = {split: _list_split(folder) for split, folder in _split_folders(root).items()}
    if "test" in listings:
        _align_test_classes(listings["train"], listings["test"])
    files = [f for listing in listings.values() for f in listing.files]
    layout = ";".join(
        f"{split}={listing.folder.relative_to(root)}:{listing.classes}"
        for split, listing in listings.items()
    )
    key = f"{fingerprint(root, files, image_size)} decoder={DECODER_VERSION} {layout}"
    items = {
        split: FileItems(listing.files, listing.labels, listing.classes, key)
        for split, listing in listings.items()
    }
    return items, key


def _cached_store(
    segments: list[Segment], out: Path, root: Path, key: str, options: DataConfig
) -> tuple[DataSplits, list[str]]:
    """The folder's store at `out`, written unless it is there for these files and settings;
    a store that does not open (cut short, files not matching its index) is rebuilt."""

    def build() -> None:
        write_store(
            segments,
            out,
            source=f"folder:{root}",
            fingerprint=key,
            image_size=options.image_size,
            classes=segments[0].source.classes,
            skip_corrupt=options.skip_corrupt,
            replace=True,
        )

    build()
    try:
        splits = open_store(out)
    except SelfsupError:
        shutil.rmtree(out)
        build()
        splits = open_store(out)
    name = f"folder:{root}"
    splits = DataSplits(
        train=dataclasses.replace(splits.train, name=name),
        test=None if splits.test is None else dataclasses.replace(splits.test, name=name),
    )
    return splits, read_index(out).skipped


def _in_memory(data: ImageData | None) -> ImageData | None:
    if data is None:
        return None
    return dataclasses.replace(data, images=data.images.clone())


def _split_folders(root: Path) -> dict[str, Path]:
    """The split folders of root: train/ plus the first of test/, val/, valid/, validation/
    found (names matched ignoring case); train/ alone is a train split with no test split.
    Without train/, root itself is the train split, unless its only sub-folders are split
    names: those are never read as classes."""
    subfolders = {
        e.name.lower(): Path(e.path)
        for e in sorted(os.scandir(root), key=_name)  # sorted: "test" overrides "Test"
        if e.is_dir() and not e.name.startswith(".")
    }
    train = subfolders.get(_TRAIN_FOLDER)
    test = next((subfolders[n] for n in _TEST_FOLDERS if n in subfolders), None)
    if train is not None:
        return {"train": train} if test is None else {"train": train, "test": test}
    if test is not None and set(subfolders) <= set(_TEST_FOLDERS):
        found = ", ".join(f"{p.name}/" for p in sorted(subfolders.values()))
        raise SelfsupError(
            f"{root} holds only held-out split folders ({found}) and no train/ folder; "
            f"add a train/ folder, or give folder:DIR with DIR one of those folders"
        )
    return {"train": root}


def _list_split(folder: Path) -> _Listing:
    """Class sub-folders (searched recursively) if any hold images, else the loose images."""
    entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=_name)
    loose = [e.path for e in entries if e.is_file() and _is_image(e.name)]
    per_class = {e.name: _images_under(e.path) for e in entries if e.is_dir()}
    per_class = {name: files for name, files in per_class.items() if files}
    if not per_class:
        if not loose:
            raise SelfsupError(
                f"no images in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} files, "
                f"directly or in class sub-folders)"
            )
        return _Listing(folder, loose, None, None)
    if loose:
        warnings.warn(
            f"ignoring {len(loose)} image(s) directly in {folder}: with class sub-folders, "
            f"only the images inside them are used",
            stacklevel=3,
        )
    classes = sorted(per_class)
    files = [f for name in classes for f in per_class[name]]
    labels = [i for i, name in enumerate(classes) for _ in per_class[name]]
    return _Listing(folder, files, labels, classes)


def _images_under(folder: str) -> list[str]:
    found = []
    for where, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(where, n) for n in sorted(names) if _is_image(n)]
    return found


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _align_test_classes(train: _Listing, test: _Listing) -> None:
    """Give the test split the train split's label indices (its classes may be a subset)."""
    if (train.classes is None) != (test.classes is None):
        raise SelfsupError(
            f"{train.folder} and {test.folder} must both have class sub-folders or both be flat"
        )
    if train.classes is None or test.classes is None or test.labels is None:
        return
    unknown = sorted(set(test.classes) - set(train.classes))
    if unknown:
        raise SelfsupError(
            f"{test.folder} has classes missing from {train.folder}: {', '.join(unknown[:5])}"
        )
    index = {name: i for i, name in enumerate(train.classes)}
    test.labels = [index[test.classes[y]] for y in test.labels]
    test.classes = train.classes
