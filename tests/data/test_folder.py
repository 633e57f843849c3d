import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import load_data
from selfsup.data import prepare as prepare_module
from selfsup.errors import SelfsupError


def write_image(path: Path, size=(8, 8), mode="RGB", seed=0) -> np.ndarray:
    """A random image (mode L, RGB or RGBA) saved by Pillow; returns its pixels (H, W[, C])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = {"L": (size[1], size[0]), "RGB": (size[1], size[0], 3), "RGBA": (size[1], size[0], 4)}
    pixels = np.random.default_rng(seed).integers(0, 256, shape[mode], dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def write_split(root: Path, classes=("cat", "dog"), per_class=3, **kw) -> None:
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", seed=10 * c + i, **kw)


def test_train_test_layout_with_labels(tmp_path):
    write_split(tmp_path / "train")
    write_split(tmp_path / "test", per_class=2)
    splits = load_data(f"folder:{tmp_path}")
    assert splits.train.images.shape == (6, 3, 8, 8) and splits.test.images.shape == (4, 3, 8, 8)
    assert (
        splits.train.classes == ["cat", "dog"] and splits.train.labels.tolist() == [0] * 3 + [1] * 3
    )
    assert splits.test.labels.tolist() == [0, 0, 1, 1]
    assert splits.train.name == f"folder:{tmp_path.resolve()}"
    pixels = np.asarray(Image.open(tmp_path / "train" / "dog" / "2.png"))
    assert np.array_equal(splits.train.images[5].permute(1, 2, 0).numpy(), pixels)  # lossless PNG


def test_val_folder_and_test_subset_of_classes(tmp_path):
    write_split(tmp_path / "train", classes=("a", "b", "c"))
    write_split(tmp_path / "val", classes=("c",))
    splits = load_data(f"folder:{tmp_path}")
    assert splits.test.classes == ["a", "b", "c"] and splits.test.labels.tolist() == [2, 2, 2]


@pytest.mark.parametrize("held_out", ["valid", "validation", "Val"])
def test_other_held_out_split_names(tmp_path, held_out):
    write_split(tmp_path / "train")
    write_split(tmp_path / held_out, per_class=1)
    splits = load_data(f"folder:{tmp_path}")
    assert splits.train.classes == ["cat", "dog"] and splits.test.labels.tolist() == [0, 1]


def test_test_folder_preferred_over_val(tmp_path):
    write_split(tmp_path / "train")
    write_split(tmp_path / "val", per_class=1)
    write_split(tmp_path / "test", per_class=2)
    assert len(load_data(f"folder:{tmp_path}").test) == 4


def test_train_folder_alone_reads_its_classes(tmp_path):
    """root/train/{cat,dog} is one labeled train split, not one class called 'train'."""
    write_split(tmp_path / "train", per_class=2)
    splits = load_data(f"folder:{tmp_path}")
    assert splits.test is None
    assert splits.train.classes == ["cat", "dog"] and splits.train.labels.tolist() == [0, 0, 1, 1]


def test_train_folder_alone_unlabeled(tmp_path):
    for i in range(3):
        write_image(tmp_path / "train" / f"{i}.png", seed=i)
    splits = load_data(f"folder:{tmp_path}")
    assert splits.test is None and splits.train.classes is None and len(splits.train) == 3


def test_held_out_split_without_train_is_an_error(tmp_path):
    write_split(tmp_path / "val")
    write_split(tmp_path / "test")
    with pytest.raises(SelfsupError, match=r"only held-out split folders \(test/, val/\).*train/"):
        load_data(f"folder:{tmp_path}")


def test_cache_written_before_the_layout_fix_is_not_used(tmp_path):
    """A cache keyed by the files alone (as before) held root/train/* as one class 'train';
    an old .pt cache file at the old place is ignored too."""
    from selfsup.data.cache import cache_dir, cache_store, fingerprint
    from selfsup.data.store import StoreIndex, write_index

    write_split(tmp_path / "train", per_class=1)
    root = tmp_path.resolve()
    files = sorted(str(f) for f in root.glob("train/*/*.png"))
    stale = cache_store(root, None)
    stale.mkdir(parents=True)
    (stale / "images.u8").write_bytes(bytes(2 * 3 * 8 * 8))
    np.save(stale / "labels.npy", np.zeros(2, dtype=np.int64))
    write_index(
        stale,
        StoreIndex(
            (2, 3, 8, 8),
            {"train": (0, 2)},
            f"folder:{root}",
            fingerprint(root, files, None),
            labelled=True,
            classes=["train"],
        ),
    )
    (cache_dir() / f"folder-{stale.name[7:]}.pt").write_bytes(b"an old torch.save cache")
    assert load_data(f"folder:{tmp_path}").train.classes == ["cat", "dog"]


def test_class_named_like_a_split_beside_other_classes(tmp_path):
    """Without train/, a 'test' class among other classes stays a class."""
    write_split(tmp_path, classes=("cat", "test"), per_class=1)
    assert load_data(f"folder:{tmp_path}").train.classes == ["cat", "test"]


def test_single_labeled_folder_has_no_test(tmp_path):
    write_split(tmp_path, per_class=2)
    splits = load_data(f"folder:{tmp_path}")
    assert splits.test is None and splits.train.labels.tolist() == [0, 0, 1, 1]


def test_flat_folder_is_unlabeled(tmp_path):
    for i in range(4):
        write_image(tmp_path / f"img{i}.jpg", seed=i)
    splits = load_data(f"folder:{tmp_path}")
    assert splits.train.labels is None and splits.train.classes is None and splits.test is None
    assert splits.train.images.shape == (4, 3, 8, 8)


def test_grey_mixed_with_rgb_becomes_rgb(tmp_path):
    write_split(tmp_path, per_class=1)
    grey = write_image(tmp_path / "cat" / "grey.jpg", mode="L", seed=5)
    write_image(tmp_path / "dog" / "alpha.png", mode="RGBA", seed=6)
    data = load_data(f"folder:{tmp_path}").train
    assert data.images.shape == (4, 3, 8, 8)
    # cat/0.png, cat/grey.jpg, dog/0.png, dog/alpha.png: the grey image is repeated over RGB
    assert (data.images[1, 0] == data.images[1, 2]).all()
    assert np.abs(data.images[1, 0].numpy().astype(int) - grey).mean() < 40  # JPEG is lossy


def test_all_grey_keeps_one_channel(tmp_path):
    write_split(tmp_path, mode="L", per_class=2)
    assert load_data(f"folder:{tmp_path}").train.images.shape == (4, 1, 8, 8)


def test_different_sizes_need_image_size(tmp_path):
    write_split(tmp_path, per_class=2)
    write_image(tmp_path / "dog" / "big.png", size=(20, 12))
    with pytest.raises(SelfsupError, match=r"different sizes.*big\.png is 20x12.*--image-size N"):
        load_data(f"folder:{tmp_path}")
    data = load_data(f"folder:{tmp_path}", image_size=6).train
    assert data.images.shape == (5, 3, 6, 6)


def test_corrupt_image_error_and_skip(tmp_path):
    write_split(tmp_path, per_class=2)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(SelfsupError, match=r"cannot decode image .*broken\.jpg.*--skip-corrupt"):
        load_data(f"folder:{tmp_path}")
    with pytest.warns(UserWarning, match=r"skipped 1 undecodable"):
        data = load_data(f"folder:{tmp_path}", skip_corrupt=True).train
    assert len(data) == 4 and data.skipped == 1 and data.labels.tolist() == [0, 0, 1, 1]
    with pytest.warns(UserWarning, match=r"skipped 1"):  # from the cache, still counted
        assert load_data(f"folder:{tmp_path}", skip_corrupt=True).train.skipped == 1
    with pytest.raises(SelfsupError, match=r"broken\.jpg"):  # the cache does not hide the error
        load_data(f"folder:{tmp_path}")


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(SelfsupError, match=r"no images in .*\.jpg, \.jpeg, \.png"):
        load_data(f"folder:{tmp_path}")


def test_missing_folder(tmp_path):
    with pytest.raises(SelfsupError, match="does not exist"):
        load_data(f"folder:{tmp_path / 'nope'}")


def test_loose_images_beside_classes_are_ignored(tmp_path):
    write_split(tmp_path, per_class=1)
    write_image(tmp_path / "stray.png")
    with pytest.warns(UserWarning, match="ignoring 1 image"):
        assert len(load_data(f"folder:{tmp_path}").train) == 2


def test_second_load_comes_from_cache(tmp_path, monkeypatch):
    write_split(tmp_path / "imgs")
    first = load_data(f"folder:{tmp_path / 'imgs'}").train
    assert len(os.listdir(os.environ["SELFSUP_CACHE_DIR"])) == 1

    def no_decoding(*args):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(prepare_module, "decode_image_bytes", no_decoding)
    cached = load_data(f"folder:{tmp_path / 'imgs'}").train
    assert np.array_equal(cached.images.numpy(), first.images.numpy())
    assert cached.labels.tolist() == first.labels.tolist() and cached.classes == first.classes


def test_changed_folder_invalidates_cache(tmp_path):
    root = tmp_path / "imgs"
    write_split(root)
    assert len(load_data(f"folder:{root}").train) == 6
    write_image(root / "dog" / "new.png", seed=99)
    assert len(load_data(f"folder:{root}").train) == 7
    edited = root / "cat" / "0.png"
    write_image(edited, seed=123)
    os.utime(edited, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    data = load_data(f"folder:{root}").train
    assert np.array_equal(data.images[0].permute(1, 2, 0).numpy(), np.asarray(Image.open(edited)))


def test_unwritable_cache_only_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("SELFSUP_CACHE_DIR", str(blocker / "cache"))
    write_split(tmp_path / "imgs", per_class=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(load_data(f"folder:{tmp_path / 'imgs'}").train) == 2
    assert any("could not write" in str(w.message) for w in caught)


def test_folder_is_read_from_a_store_in_the_cache(tmp_path):
    """Both splits are views of one memory-mapped file: the cache's store, train rows then
    test rows."""
    from selfsup.data.cache import cache_store
    from selfsup.data.store import read_index

    write_split(tmp_path / "train")
    write_split(tmp_path / "test", per_class=2)
    splits = load_data(f"folder:{tmp_path}")
    store = cache_store(tmp_path.resolve(), None)
    index = read_index(store)
    assert index.splits == {"train": (0, 6), "test": (6, 10)} and index.test_from is None
    base = splits.train.images.untyped_storage().data_ptr()
    assert splits.test.images.untyped_storage().data_ptr() == base
    assert splits.test.images.data_ptr() == base + 6 * 3 * 8 * 8


def test_cut_short_cache_is_rebuilt(tmp_path):
    from selfsup.data.cache import cache_store

    write_split(tmp_path / "imgs")
    first = load_data(f"folder:{tmp_path / 'imgs'}").train.images.clone()
    images = cache_store((tmp_path / "imgs").resolve(), None) / "images.u8"
    with open(images, "r+b") as f:
        f.truncate(images.stat().st_size // 2)
    again = load_data(f"folder:{tmp_path / 'imgs'}").train.images
    assert torch.equal(again, first) and images.stat().st_size == first.numel()
