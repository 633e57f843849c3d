import pytest
import torch

from selfsup.data import available_sources, describe_sources, load_data
from selfsup.errors import SelfsupError


def test_digits_default_split():
    splits = load_data("digits")
    train, test = splits.train, splits.test
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    assert train.classes == [str(d) for d in range(10)] and train.name == "digits"
    per_class = torch.cat([train.labels, test.labels]).bincount()
    assert ((test.labels.bincount() - 0.2 * per_class).abs() <= 1).all()  # stratified
    assert torch.equal(load_data("digits").test.images, test.images)  # deterministic


def test_image_size_resizes_every_split():
    splits = load_data("digits", image_size=16)
    assert splits.train.images.shape[1:] == (1, 16, 16)
    assert splits.test.images.shape[1:] == (1, 16, 16)


def test_sources_are_described():
    names = available_sources()
    assert {"digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "folder", "npy"} <= set(
        names
    )
    help_lines = describe_sources()
    assert list(help_lines) == names and all(help_lines.values())


def test_unknown_source_lists_names():
    with pytest.raises(SelfsupError, match=r"unknown data source 'cifar'.*did you mean") as e:
        load_data("cifar:/tmp")
    assert "digits" in str(e.value) and "folder" in str(e.value)


def test_bare_path_suggests_folder(tmp_path):
    with pytest.raises(SelfsupError, match=r"folder:"):
        load_data(str(tmp_path))


def test_digits_takes_no_path():
    with pytest.raises(SelfsupError, match="'digits' takes no PATH"):
        load_data("digits:/some/where")


@pytest.mark.parametrize("name", ["folder", "npy", "cifar10", "cifar100", "mnist"])
def test_path_required(name):
    with pytest.raises(SelfsupError, match=f"'{name}' needs a PATH"):
        load_data(name)


@pytest.mark.parametrize("size", [0, -3])
def test_bad_image_size(size):
    with pytest.raises(SelfsupError, match="image size"):
        load_data("digits", image_size=size)
