import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from selfsup.data import load_data
from selfsup.errors import SelfsupError

NAMES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _dump(path: Path, obj) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(folder: Path, per_batch=4, n_test=3) -> np.ndarray:
    """The official layout: data_batch_1..5, test_batch, batches.meta with bytes keys."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    all_data = []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        all_data.append(data)
        _dump(
            folder / f"data_batch_{i}",
            {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"labels": [int(x) for x in rng.integers(0, 10, per_batch)],
                b"data": data,
                b"filenames": [b"x.png"] * per_batch,
            },
        )
    _dump(
        folder / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [1] * n_test,
            b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
            b"filenames": [b"y.png"] * n_test,
        },
    )
    _dump(
        folder / "batches.meta",
        {
            b"num_cases_per_batch": per_batch,
            b"num_vis": 3072,
            b"label_names": [n.encode() for n in NAMES10],
        },
    )
    return np.concatenate(all_data)


def write_cifar100(folder: Path, n=6) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        _dump(
            folder / split,
            {
                b"filenames": [b"z.png"] * n,
                b"batch_label": split.encode(),
                b"fine_labels": [int(x) for x in rng.integers(0, 100, n)],
                b"coarse_labels": [int(x) for x in rng.integers(0, 20, n)],
                b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            },
        )
    _dump(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )


@pytest.mark.parametrize("point_at_parent", [True, False])
def test_cifar10(tmp_path, point_at_parent):
    data = write_cifar10(tmp_path / "cifar-10-batches-py")
    where = tmp_path if point_at_parent else tmp_path / "cifar-10-batches-py"
    splits = load_data(f"cifar10:{where}")
    assert splits.train.images.shape == (20, 3, 32, 32) and len(splits.test) == 3
    assert np.array_equal(splits.train.images.reshape(20, -1).numpy(), data)
    assert splits.train.classes == NAMES10 and splits.test.labels.tolist() == [1, 1, 1]


def test_cifar100_fine_labels(tmp_path):
    write_cifar100(tmp_path / "cifar-100-python")
    splits = load_data(f"cifar100:{tmp_path}")
    assert len(splits.train) == 6 and splits.train.classes[:2] == ["fine0", "fine1"]
    assert len(splits.train.classes) == 100 and int(splits.train.labels.max()) < 100


def test_missing_suggests_download(tmp_path):
    with pytest.raises(SelfsupError, match=r"CIFAR-10 not found: looked for .*--download"):
        load_data(f"cifar10:{tmp_path}")


def test_refuses_pickled_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    _dump(folder / "batches.meta", {b"label_names": os.system})
    with pytest.raises(SelfsupError, match="refusing to load"):
        load_data(f"cifar10:{folder}")


def test_wrong_batch_shape(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    _dump(folder / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(SelfsupError, match=r"\(N, 3072\)"):
        load_data(f"cifar10:{folder}")
