import pytest
import torch

from selfsup.data import DataSplits, ImageData, holdout


def _data(n=20, labels=True, channels=3):
    images = torch.randint(0, 256, (n, channels, 6, 5), dtype=torch.uint8)
    y = torch.arange(n) % 2 if labels else None
    return ImageData(images, y, ["a", "b"] if labels else None, "toy")


def test_properties_and_subset():
    data = _data()
    assert len(data) == 20
    assert (data.num_channels, data.height, data.width, data.image_size) == (3, 6, 5, 6)
    assert data.num_classes == 2 and data.skipped == 0
    part = data.subset(torch.tensor([3, 1]))
    assert len(part) == 2 and part.images.is_contiguous()
    assert torch.equal(part.images[0], data.images[3]) and part.labels.tolist() == [1, 1]
    assert part.classes == ["a", "b"] and part.name == "toy"


def test_images_made_contiguous():
    images = torch.zeros(4, 8, 8, 3, dtype=torch.uint8).permute(0, 3, 1, 2)
    assert ImageData(images, None, None, "x").images.is_contiguous()


@pytest.mark.parametrize(
    "images",
    [
        torch.zeros(2, 3, 4, 4),  # float
        torch.zeros(2, 4, 4, dtype=torch.uint8),  # 3-D
        torch.zeros(2, 2, 4, 4, dtype=torch.uint8),  # 2 channels
    ],
)
def test_rejects_bad_images(images):
    with pytest.raises(ValueError, match="uint8"):
        ImageData(images, None, None, "x")


def test_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        ImageData(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.zeros(2).long(), None, "x")


def test_holdout_is_stratified_and_deterministic():
    data = _data(n=100)
    a, b = holdout(data, 0.2, seed=0), holdout(data, 0.2, seed=0)
    assert isinstance(a, DataSplits) and (len(a.train), len(a.test)) == (80, 20)
    assert torch.equal(a.test.images, b.test.images)
    assert a.test.labels.bincount().tolist() == [10, 10]


def test_holdout_unlabeled_and_tiny_classes():
    unlabeled = holdout(_data(n=10, labels=False), 0.3)
    assert (len(unlabeled.train), len(unlabeled.test)) == (7, 3) and unlabeled.test.labels is None
    data = _data(n=5)
    data.labels = torch.tensor([0, 0, 0, 0, 1])  # one member in class 1: cannot stratify
    assert len(holdout(data, 0.4).test) == 2


def test_holdout_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        holdout(_data(), 1.0)
