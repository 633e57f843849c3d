"""MNIST and Fashion-MNIST from their IDX files (gzip or not).

The IDX parser is ours (20 lines of numpy) because torchvision's MNIST classes insist on their
own folder layout (ROOT/FashionMNIST/raw/...), while the Debian package puts the four files
directly in /usr/share/datasets/fashion-mnist/.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits
from selfsup.errors import SelfsupError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file: magic 0x0000 + dtype code + ndim, ndim big-endian uint32 dims, data."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise SelfsupError(f"{path}: broken gzip data ({e}); download the file again") from e
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise SelfsupError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim, header = raw[3], 4 + 4 * raw[3]
    if len(raw) < header:
        raise SelfsupError(f"{path}: IDX header is cut short")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    if len(raw) - header != math.prod(dims) * dtype.itemsize:
        raise SelfsupError(
            f"{path}: IDX dims {dims} want {math.prod(dims) * dtype.itemsize} bytes of data, "
            f"found {len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_fashion_mnist(path: str | None, options: DataConfig) -> DataSplits:
    """Fashion-MNIST: 60,000 + 10,000 grey 28x28 images, 10 classes; default DIR from Debian."""
    hint = f"; on Debian, `apt-get install dataset-fashion-mnist` puts them in {FASHION_MNIST_DIR}"
    folder = Path(path or FASHION_MNIST_DIR)
    name, classes = "fashion-mnist", FASHION_MNIST_CLASSES
    return _load_idx_source(folder, name, classes, "FashionMNIST", options.download, hint)


def load_mnist(path: str | None, options: DataConfig) -> DataSplits:
    """MNIST handwritten digits from IDX files in DIR (same format as Fashion-MNIST)."""
    assert path is not None, "the registry requires mnist:DIR"
    classes = [str(d) for d in range(10)]
    return _load_idx_source(Path(path), "mnist", classes, "MNIST", options.download)


def _load_idx_source(
    folder: Path,
    name: str,
    classes: list[str],
    torchvision_name: str,
    download: bool,
    hint: str = "",
) -> DataSplits:
    folder = folder.expanduser()
    if download and _find(folder, torchvision_name, IDX_FILES["train"][0]) is None:
        import torchvision.datasets

        try:
            getattr(torchvision.datasets, torchvision_name)(root=str(folder), download=True)
        except Exception as e:
            raise SelfsupError(f"could not download {name} into {folder}: {e}") from e
    splits = {}
    for split, stems in IDX_FILES.items():
        files = [_find(folder, torchvision_name, stem) for stem in stems]
        if None in files:
            raise SelfsupError(
                f"{name}: no {stems[0 if files[0] is None else 1]}[.gz] in {folder} "
                f"(nor in its raw/ or {torchvision_name}/raw/ sub-folder); point {name}:DIR at the "
                f"folder holding the four IDX files, or pass --download to fetch them there{hint}"
            )
        images, labels = read_idx(files[0]), read_idx(files[1])
        if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != (len(images),):
            raise SelfsupError(
                f"{name}: {files[0].name} {images.dtype}{images.shape} and {files[1].name} "
                f"{labels.dtype}{labels.shape} are not N uint8 images with N labels"
            )
        splits[split] = ImageData(
            images=torch.from_numpy(images).unsqueeze(1),
            labels=torch.from_numpy(labels.astype(np.int64)),
            classes=list(classes),
            name=name,
        )
    return DataSplits(train=splits["train"], test=splits["test"])


def _find(folder: Path, torchvision_name: str, stem: str) -> Path | None:
    """The IDX file `stem` or `stem.gz` in DIR, DIR/raw or torchvision's DIR/<Name>/raw."""
    for where in (folder, folder / "raw", folder / torchvision_name / "raw"):
        for candidate in (where / stem, where / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None
