"""The folder loader on the real 60,000-image CIFAR-10 JPEG copy (slow: decodes every file)."""

import time

import pytest
from shared_data import cifar10_jpg

from selfsup.data import load_data


@pytest.mark.slow
def test_cifar10_jpeg_folder():
    root = cifar10_jpg()
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
