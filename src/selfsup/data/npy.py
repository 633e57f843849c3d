"""Images from numpy files: a .npz (images, labels, test_images, test_labels, classes) or a
.npy of images with an optional sibling <stem>_labels.npy.

Instead of `images`, a .npz may hold several image arrays of the same samples, e.g. `rgb`
(N, 3, H, W) and `depth` (N, 1, H, W) (with `test_rgb`, `test_depth` for a test split): they are
stacked along the channels in the file's order and their names kept (`channel_groups`), so CMC
can contrast them as views (`method.split=rgb|depth`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits
from selfsup.errors import SelfsupError

ACCEPTED = (
    "uint8 (or float in [0, 1]) arrays shaped (N, H, W), (N, H, W, C) or (N, C, H, W), C in {1, 3}"
)
# Channels per array of a named channel group (depth 1, RGB 3, RGB-D or RGBA 4); an `images`
# array with 2 or 4 channels is one group called "images".
GROUP_CHANNELS = (1, 2, 3, 4)
RESERVED = ("labels", "test_labels", "classes")


def load_npy(path: str | None, options: DataConfig) -> DataSplits:
    """Read the arrays, check their shape and dtype, and convert them to uint8 (N, C, H, W)."""
    assert path is not None, "the registry requires npy:PATH"
    file = Path(path).expanduser()
    if not file.is_file():
        raise SelfsupError(f"{file} does not exist; npy:PATH wants a .npz or .npy file")
    if file.suffix not in (".npz", ".npy"):
        raise SelfsupError(f"{file}: npy:PATH wants a .npz or .npy file, not '{file.suffix}'")
    arrays = _read_arrays(file)
    sibling = file.with_name(f"{file.stem}_labels.npy")
    if file.suffix == ".npy" and sibling.is_file():
        arrays["labels"] = _read_arrays(sibling)["images"]
    if "images" not in arrays:
        return _channel_group_splits(arrays, f"npy:{file}", file)
    if "test_labels" in arrays and "test_images" not in arrays:
        raise SelfsupError(f"{file} has 'test_labels' but no 'test_images'")
    if "test_images" in arrays and ("labels" in arrays) != ("test_labels" in arrays):
        raise SelfsupError(f"{file}: give both 'labels' and 'test_labels', or neither")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    name = f"npy:{file}"
    train = _image_data(arrays, "images", "labels", classes, name)
    test = _image_data(arrays, "test_images", "test_labels", classes, name)
    assert train is not None
    return DataSplits(train=train, test=test)


def images_from_array(
    array: np.ndarray, what: str, channels: tuple[int, ...] = (1, 3)
) -> torch.Tensor:
    """uint8 (N, C, H, W) from an accepted array, or a SelfsupError naming what was found.

    `channels`: the accepted channel counts C (channels first when both axes could be C)."""
    accepted = ACCEPTED if channels == (1, 3) else ACCEPTED.replace("{1, 3}", str(set(channels)))
    found = f"{what} is {array.dtype} {array.shape}; accepted: {accepted}"
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1] in channels:
        pass
    elif array.ndim == 4 and array.shape[3] in channels:
        array = array.transpose(0, 3, 1, 2)
    else:
        raise SelfsupError(found)
    if np.issubdtype(array.dtype, np.floating):
        if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise SelfsupError(f"{found} (float values must lie in [0, 1])")
        array = np.rint(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise SelfsupError(found)
    return torch.from_numpy(np.ascontiguousarray(array))


def _image_data(
    arrays: dict[str, np.ndarray], key: str, label_key: str, classes: list[str] | None, name: str
) -> ImageData | None:
    if key not in arrays:
        return None
    images = images_from_array(arrays[key], f"'{key}' in {name}", GROUP_CHANNELS)
    groups = () if images.shape[1] in (1, 3) else (("images", images.shape[1]),)
    return _with_labels(images, arrays, key, label_key, classes, name, groups)


def _with_labels(
    images: torch.Tensor,
    arrays: dict[str, np.ndarray],
    key: str,
    label_key: str,
    classes: list[str] | None,
    name: str,
    groups: tuple[tuple[str, int], ...],
) -> ImageData:
    labels = None
    if label_key in arrays:
        y = arrays[label_key]
        if y.shape != (len(images),) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise SelfsupError(
                f"'{label_key}' in {name} is {y.dtype} {y.shape}; wanted {len(images)} "
                f"non-negative integers, one per image of '{key}'"
            )
        labels = torch.from_numpy(y.astype(np.int64))
    return ImageData(
        images=images, labels=labels, classes=classes, name=name, channel_groups=groups
    )


def _channel_group_splits(arrays: dict[str, np.ndarray], name: str, file: Path) -> DataSplits:
    """An npz of named image arrays of the same samples (rgb, depth, ...): stacked channels."""
    keys = [k for k in arrays if k not in RESERVED and not k.startswith("test_")]
    if len(keys) < 2:
        raise SelfsupError(
            f"{file} has no 'images' array (found: {', '.join(sorted(arrays))}); give "
            f"'images', or two or more arrays of the same samples, one per channel group, "
            f"such as 'rgb' and 'depth'"
        )
    tests = [f"test_{k}" for k in keys]
    has_test = [t in arrays for t in tests]
    if any(has_test) and not all(has_test):
        raise SelfsupError(f"{file}: give a test array for every channel group ({tests}) or none")
    if all(has_test) and ("labels" in arrays) != ("test_labels" in arrays):
        raise SelfsupError(f"{file}: give both 'labels' and 'test_labels', or neither")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    splits = []
    for prefix in ("", "test_") if all(has_test) else ("",):
        parts = [
            images_from_array(arrays[prefix + k], f"'{prefix + k}' in {name}", GROUP_CHANNELS)
            for k in keys
        ]
        shapes = {(p.shape[0], *p.shape[2:]) for p in parts}
        if len(shapes) != 1:
            pairs = zip(keys, parts, strict=True)
            found = ", ".join(f"{prefix + k} {tuple(p.shape)}" for k, p in pairs)
            raise SelfsupError(
                f"{file}: the channel-group arrays must share N, H and W (found {found})"
            )
        groups = tuple((k, p.shape[1]) for k, p in zip(keys, parts, strict=True))
        images = torch.cat(parts, dim=1)
        label_key = "test_labels" if prefix else "labels"
        what = prefix + "+".join(keys)
        splits.append(_with_labels(images, arrays, what, label_key, classes, name, groups))
    return DataSplits(train=splits[0], test=splits[1] if len(splits) > 1 else None)


def _read_arrays(file: Path) -> dict[str, np.ndarray]:
    """A .npz's arrays, or {'images': array} for a .npy; no pickles (data must not run code)."""
    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"images": loaded}
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except Exception as e:
        raise SelfsupError(f"cannot read {file} as a numpy file: {e}") from e
