"""A folder of image files: class sub-folders give labels, a flat folder is unlabeled, and
split sub-folders (train/, with test/, val/, valid/ or validation/) give the splits.
Decoded once, then cached on disk."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch

from selfsup.config import DataConfig
from selfsup.data.cache import cache_file, fingerprint, load_cached, save_cached
from selfsup.data.decode import (
    DECODER_VERSION,
    IMAGE_EXTENSIONS,
    CorruptImageError,
    decode_image_file,
)
from selfsup.data.images import ImageData
from selfsup.data.resize import resize_square
from selfsup.data.split import DataSplits
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
    """Decode every image under DIR into memory (or read them from the cache)."""
    assert path is not None, "the registry requires folder:DIR"
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise SelfsupError(f"image folder {root} {what}; give folder:DIR with DIR a folder")
    listings = {split: _list_split(folder) for split, folder in _split_folders(root).items()}
    if "test" in listings:
        _align_test_classes(listings["train"], listings["test"])
    files = [f for listing in listings.values() for f in listing.files]
    key = _cache_key(root, files, options, listings)
    store = cache_file(root, options.image_size)
    payload = load_cached(store, key)
    if payload is not None and not options.skip_corrupt and _skipped(payload):
        payload = None  # decode again, so that the corrupt file raises its own error
    if payload is None:
        payload = {split: _decode(listing, options) for split, listing in listings.items()}
        _match_splits(payload, root)
        save_cached(store, key, payload)
    skipped = _skipped(payload)
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} undecodable image(s) under {root} (first: {skipped[0]})",
            stacklevel=3,
        )
    data = {split: _image_data(stored, f"folder:{root}") for split, stored in payload.items()}
    return DataSplits(train=data["train"], test=data.get("test"))


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


def _cache_key(
    root: Path, files: list[str], options: DataConfig, listings: dict[str, _Listing]
) -> str:
    """The files' fingerprint, plus what else decides the payload: the decoder's version and
    each split's folder and classes (a cache written before a layout or decoder fix is stale)."""
    layout = ";".join(
        f"{split}={listing.folder.relative_to(root)}:{listing.classes}"
        for split, listing in listings.items()
    )
    return f"{fingerprint(root, files, options.image_size)} decoder={DECODER_VERSION} {layout}"


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


def _decode(listing: _Listing, options: DataConfig) -> dict[str, Any]:
    """Decode a split's files into one uint8 (N, C, H, W) tensor; RGB unless all are grey."""
    images: list[torch.Tensor] = []
    labels: list[int] = []
    skipped: list[str] = []
    first: tuple[str, torch.Size] | None = None
    for i, file in enumerate(listing.files):
        try:
            image = decode_image_file(file)
        except CorruptImageError:
            if not options.skip_corrupt:
                raise
            skipped.append(file)
            continue
        if options.image_size is not None:
            image = resize_square(image, options.image_size)
        elif first is None:
            first = (file, image.shape[1:])
        elif image.shape[1:] != first[1]:
            _raise_mixed_sizes(first, (file, image.shape[1:]))
        images.append(image)
        if listing.labels is not None:
            labels.append(listing.labels[i])
    if not images:
        raise SelfsupError(f"none of the {len(listing.files)} images in {listing.folder} decode")
    channels = max(image.shape[0] for image in images)
    return {
        "images": torch.stack([image.expand(channels, -1, -1) for image in images]),
        "labels": None if listing.labels is None else torch.tensor(labels, dtype=torch.int64),
        "classes": listing.classes,
        "skipped": skipped,
    }


def _match_splits(payload: dict[str, Any], root: Path) -> None:
    """Same size and channel count in both splits: grey test images follow an RGB train split."""
    if "test" not in payload:
        return
    train, test = payload["train"]["images"], payload["test"]["images"]
    if train.shape[2:] != test.shape[2:]:
        _raise_mixed_sizes(("train/", train.shape[2:]), ("test/", test.shape[2:]), root)
    channels = max(train.shape[1], test.shape[1])
    for split in payload.values():
        split["images"] = split["images"].expand(-1, channels, -1, -1).contiguous()


def _raise_mixed_sizes(
    a: tuple[str, torch.Size], b: tuple[str, torch.Size], root: Path | None = None
) -> NoReturn:
    where = f" under {root}" if root is not None else ""
    raise SelfsupError(
        f"images{where} have different sizes: {a[0]} is {a[1][1]}x{a[1][0]}, "
        f"{b[0]} is {b[1][1]}x{b[1][0]} (width x height); pass --image-size N to resize "
        f"them all to NxN (shorter side to N, then a centre crop)"
    )


def _skipped(payload: dict[str, Any]) -> list[str]:
    return [f for split in payload.values() for f in split["skipped"]]


def _image_data(stored: dict[str, Any], name: str) -> ImageData:
    return ImageData(
        images=stored["images"],
        labels=stored["labels"],
        classes=stored["classes"],
        name=name,
        skipped=len(stored["skipped"]),
    )
