import numpy as np
import pytest

from selfsup.data import load_data
from selfsup.errors import SelfsupError


def _images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_npz_with_test_split_and_classes(tmp_path):
    file = tmp_path / "set.npz"
    train, test = _images((6, 9, 9, 3)), _images((2, 9, 9, 3), seed=1)
    np.savez(
        file,
        images=train,
        labels=np.arange(6) % 3,
        test_images=test,
        test_labels=np.array([2, 0]),
        classes=np.array(["a", "b", "c"]),
    )
    splits = load_data(f"npy:{file}")
    assert splits.train.images.shape == (6, 3, 9, 9)  # NHWC -> NCHW
    assert np.array_equal(splits.train.images.permute(0, 2, 3, 1).numpy(), train)
    assert splits.test.labels.tolist() == [2, 0] and splits.train.classes == ["a", "b", "c"]


def test_npy_with_sibling_labels(tmp_path):
    np.save(tmp_path / "x.npy", _images((5, 1, 7, 7)))  # already NCHW
    np.save(tmp_path / "x_labels.npy", np.array([0, 1, 0, 1, 1]))
    splits = load_data(f"npy:{tmp_path / 'x.npy'}")
    assert splits.train.images.shape == (5, 1, 7, 7) and splits.test is None
    assert splits.train.labels.tolist() == [0, 1, 0, 1, 1]


def test_grey_nhw_and_float_unlabeled(tmp_path):
    np.save(tmp_path / "grey.npy", np.full((3, 4, 4), 0.5, dtype=np.float32))
    data = load_data(f"npy:{tmp_path / 'grey.npy'}").train
    assert data.images.shape == (3, 1, 4, 4) and data.labels is None
    assert int(data.images[0, 0, 0, 0]) == 128  # rint(0.5 * 255)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((4, 8, 8, 5), np.uint8), r"uint8 \(4, 8, 8, 5\); accepted: uint8"),
        (np.zeros((4, 8), np.uint8), r"\(4, 8\); accepted"),
        (np.zeros((4, 8, 8), np.int64), r"int64 \(4, 8, 8\); accepted"),
        (np.full((2, 8, 8), 3.0), r"float values must lie in \[0, 1\]"),
    ],
)
def test_rejected_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(SelfsupError, match=match):
        load_data(f"npy:{tmp_path / 'bad.npy'}")


def test_labels_must_match_images(tmp_path):
    np.savez(tmp_path / "x.npz", images=_images((4, 8, 8)), labels=np.array([0, 1]))
    with pytest.raises(SelfsupError, match=r"'labels' .* wanted 4 non-negative integers"):
        load_data(f"npy:{tmp_path / 'x.npz'}")


def test_npz_without_images(tmp_path):
    np.savez(tmp_path / "x.npz", pixels=_images((4, 8, 8)))
    with pytest.raises(SelfsupError, match=r"no 'images' array \(found: pixels\)"):
        load_data(f"npy:{tmp_path / 'x.npz'}")


def test_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(SelfsupError, match="does not exist"):
        load_data(f"npy:{tmp_path / 'none.npz'}")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(SelfsupError, match=r"\.npz or \.npy"):
        load_data(f"npy:{tmp_path / 'x.csv'}")


def test_pickled_npy_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SelfsupError, match="cannot read"):
        load_data(f"npy:{tmp_path / 'obj.npy'}")


def test_npz_of_named_channel_groups(tmp_path):
    rgb, depth = _images((5, 6, 6, 3)), _images((5, 1, 6, 6), seed=1)
    np.savez(tmp_path / "x.npz", rgb=rgb, depth=depth, labels=np.arange(5) % 2)
    data = load_data(f"npy:{tmp_path / 'x.npz'}").train
    assert data.images.shape == (5, 4, 6, 6) and data.channel_groups == (("rgb", 3), ("depth", 1))
    assert np.array_equal(data.images[:, :3].permute(0, 2, 3, 1).numpy(), rgb)
    assert np.array_equal(data.images[:, 3:].numpy(), depth)
    assert data.subset(np.array([0, 2])).channel_groups == data.channel_groups


def test_named_channel_groups_must_agree(tmp_path):
    np.savez(tmp_path / "a.npz", rgb=_images((5, 6, 6, 3)), depth=_images((4, 1, 6, 6)))
    with pytest.raises(SelfsupError, match=r"share N, H and W .*rgb \(5, 3, 6, 6\)"):
        load_data(f"npy:{tmp_path / 'a.npz'}")
    np.savez(
        tmp_path / "b.npz",
        rgb=_images((5, 6, 6, 3)),
        depth=_images((5, 1, 6, 6)),
        test_rgb=_images((2, 6, 6, 3)),
    )
    with pytest.raises(SelfsupError, match="test array for every channel group"):
        load_data(f"npy:{tmp_path / 'b.npz'}")


def test_four_channel_images_array_is_one_group(tmp_path):
    np.save(tmp_path / "rgbd.npy", _images((3, 4, 5, 5)))
    data = load_data(f"npy:{tmp_path / 'rgbd.npy'}").train
    assert data.images.shape == (3, 4, 5, 5) and data.channel_groups == (("images", 4),)
