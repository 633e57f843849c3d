"""CIFAR-10 and CIFAR-100 from the official python-pickle release (or fetched by torchvision)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits
from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class CifarRelease:
    """Where one CIFAR release keeps its pickles and which keys hold labels and class names."""

    title: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    torchvision_class: str


CIFAR10 = CifarRelease(
    title="CIFAR-10",
    folder="cifar-10-batches-py",
    train=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test=("test_batch",),
    meta="batches.meta",
    label_key="labels",
    names_key="label_names",
    torchvision_class="CIFAR10",
)
CIFAR100 = CifarRelease(
    title="CIFAR-100",
    folder="cifar-100-python",
    train=("train",),
    test=("test",),
    meta="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    torchvision_class="CIFAR100",
)


def load_cifar10(path: str | None, options: DataConfig) -> DataSplits:
    """CIFAR-10: 50,000 + 10,000 RGB 32x32 images, 10 classes."""
    return _load_cifar(CIFAR10, "cifar10", path, options.download)


def load_cifar100(path: str | None, options: DataConfig) -> DataSplits:
    """CIFAR-100: 50,000 + 10,000 RGB 32x32 images, 100 fine classes."""
    return _load_cifar(CIFAR100, "cifar100", path, options.download)


def _load_cifar(release: CifarRelease, name: str, path: str | None, download: bool) -> DataSplits:
    assert path is not None, f"the registry requires {name}:DIR"
    root = Path(path).expanduser()
    folder = _locate(release, root)
    if folder is None and download:
        import torchvision.datasets

        try:  # fetches and checks the archive, extracts it into root/<release.folder>
            getattr(torchvision.datasets, release.torchvision_class)(root=str(root), download=True)
        except Exception as e:
            raise SelfsupError(f"could not download {release.title} into {root}: {e}") from e
        folder = _locate(release, root)
    if folder is None:
        files = ", ".join((*release.train, *release.test, release.meta))
        raise SelfsupError(
            f"{release.title} not found: looked for {files} in {root} and in "
            f"{root / release.folder}; pass --download to fetch it into {root}"
        )
    meta = _unpickle(folder / release.meta)
    classes = [_text(c) for c in _field(meta, release.names_key, folder / release.meta)]
    splits = {
        split: _read_batches(folder, files, release.label_key, classes, name)
        for split, files in (("train", release.train), ("test", release.test))
    }
    return DataSplits(train=splits["train"], test=splits["test"])


def _locate(release: CifarRelease, root: Path) -> Path | None:
    """The folder holding the pickles: root itself or root/<release.folder>."""
    for folder in (root, root / release.folder):
        names = (*release.train, *release.test, release.meta)
        if all((folder / n).is_file() for n in names):
            return folder
    return None


def _read_batches(
    folder: Path, files: tuple[str, ...], label_key: str, classes: list[str], name: str
) -> ImageData:
    images, labels = [], []
    for file in files:
        batch = _unpickle(folder / file)
        data = np.asarray(_field(batch, "data", folder / file), dtype=np.uint8)
        y = np.asarray(_field(batch, label_key, folder / file), dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or y.shape != (len(data),):
            raise SelfsupError(
                f"{folder / file}: expected 'data' of shape (N, 3072) and N labels, "
                f"found {data.shape} and {y.shape}; the file is not a CIFAR batch"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y)
    return ImageData(
        images=torch.from_numpy(np.concatenate(images)),
        labels=torch.from_numpy(np.concatenate(labels)),
        classes=classes,
        name=name,
    )


def _unpickle(path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle (Python 2 or 3), allowing only numpy arrays; keys become str."""
    try:
        with path.open("rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as e:
        raise SelfsupError(f"{path} is not a readable CIFAR pickle: {e}") from e
    if not isinstance(obj, dict):
        raise SelfsupError(f"{path} holds a {type(obj).__name__}, not a CIFAR dict")
    return {_text(k): v for k, v in obj.items()}


def _field(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise SelfsupError(f"{path} has no '{key}' entry (found: {', '.join(sorted(batch))})")
    return batch[key]


def _text(value: str | bytes) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


# The globals a CIFAR pickle may name: numpy arrays (numpy.core's reconstruct functions, which
# numpy 2 calls numpy._core and still resolves under the old name) and protocol-2 bytes.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    *(
        (f"{module}.{part}", name)
        for module in ("numpy.core", "numpy._core")
        for part, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    ),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR pickles hold dicts, lists, strings and numpy arrays: refuse any other global,
    so that a tampered file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not a numpy array)")
