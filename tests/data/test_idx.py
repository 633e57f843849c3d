import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from selfsup.data import load_data
from selfsup.data.idx import FASHION_MNIST_DIR, read_idx
from selfsup.errors import SelfsupError


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format: 0x0000, dtype code 0x08 (uint8), ndim, big-endian uint32 dims, data."""
    return struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape) + array.tobytes()


def write_idx_set(folder: Path, n_train=12, n_test=5, compress=True, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
        else:
            (folder / name).write_bytes(idx_bytes(array))
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_dir(tmp_path, compress):
    arrays = write_idx_set(tmp_path, compress=compress)
    splits = load_data(f"fashion-mnist:{tmp_path}")
    assert splits.train.images.shape == (12, 1, 28, 28) and splits.test.images.shape[0] == 5
    assert np.array_equal(splits.train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert splits.test.labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert splits.train.classes[0] == "T-shirt/top" and len(splits.train.classes) == 10


def test_mnist_in_torchvision_layout(tmp_path):
    write_idx_set(tmp_path / "MNIST" / "raw")
    splits = load_data(f"mnist:{tmp_path}")
    assert splits.train.classes == [str(d) for d in range(10)] and splits.train.name == "mnist"


def test_missing_files_message(tmp_path):
    with pytest.raises(SelfsupError, match=r"no train-images-idx3-ubyte\[\.gz\] in .*--download"):
        load_data(f"fashion-mnist:{tmp_path}")


def test_bad_magic(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\0" * 8)
    with pytest.raises(SelfsupError, match="bad magic number"):
        read_idx(bad)


def test_truncated_file(tmp_path):
    cut = tmp_path / "x.idx"
    cut.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5])
    with pytest.raises(SelfsupError, match="truncated"):
        read_idx(cut)


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fashion_mnist_default_path():
    splits = load_data("fashion-mnist")
    assert splits.train.images.shape == (60000, 1, 28, 28)
    assert splits.test.images.shape == (10000, 1, 28, 28)
    assert splits.train.labels.bincount().tolist() == [6000] * 10
