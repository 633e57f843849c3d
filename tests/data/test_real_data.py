"""The folder loader on the real 60,000-image CIFAR-10 JPEG copy (slow: decodes every file)."""

import tarfile
import time
from pathlib import Path

import pytest

from selfsup.data import load_data

TARBALL = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpg.tar.gz"
EXTRACTED = Path(__file__).resolve().parents[2] / "data" / "cifar10-jpg"


@pytest.mark.slow
@pytest.mark.skipif(not TARBALL.exists() and not EXTRACTED.exists(), reason="no CIFAR-10 JPEGs")
def test_cifar10_jpeg_folder(tmp_path):
    root = EXTRACTED
    if not (root / "train").is_dir():
        root = tmp_path / "cifar10-jpg"
        with tarfile.open(TARBALL) as tar:
            tar.extractall(root, filter="data")
    start = time.perf_counter()
    splits = load_data(f"folder:{root}")
    first = time.perf_counter() - start
    assert splits.train.images.shape == (50000, 3, 32, 32)
    assert splits.test.images.shape == (10000, 3, 32, 32)
    assert len(splits.train.classes) == 10 and splits.train.classes[0] == "airplane"
    assert splits.train.labels.bincount().tolist() == [5000] * 10
    assert splits.test.labels.bincount().tolist() == [1000] * 10
    start = time.perf_counter()
    cached = load_data(f"folder:{root}")
    assert time.perf_counter() - start < first / 3
    assert cached.train.images.equal(splits.train.images)
