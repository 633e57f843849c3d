"""Time series and audio held in memory: float32 (N, C, T) plus a mask when lengths differ.

Sources: `series:FILE` (.npz / .npy numpy arrays), `ucr:NAME` (the UCR/UEA archive through
aeon; the sets bundled with aeon load offline) and `wav:DIR` (WAV files, label = subfolder).
Series of different lengths are never silently truncated: `data.series_lengths` says what to
do, "pad" (default: zeros at the end and a mask of the valid steps) or "crop" (every series
cut to the shortest one's length, announced on loading).
"""

from __future__ import annotations

import warnings
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.split import DataSplits, FactorLabels, Split, row_positions
from selfsup.errors import SelfsupError

LENGTH_MODES = ("pad", "crop")
UCR_BUNDLED = (
    "GunPoint",
    "ArrowHead",
    "BasicMotions",
    "ItalyPowerDemand",
    "OSULeaf",
    "JapaneseVowels",
)


@dataclass
class SeriesData(Split):
    """N series as float32 (N, C, T); `mask` bool (N, T) marks valid steps (None: all valid)."""

    series: torch.Tensor
    mask: torch.Tensor | None
    labels: torch.Tensor | None
    classes: list[str] | None
    name: str
    files: list[str] | None = None  # each series' file (wav:DIR), for search results
    skipped: int = 0  # files left out on loading (--skip-corrupt)
    factors: FactorLabels | None = None  # generated data's known factors, for evaluation

    def __post_init__(self) -> None:
        x = self.series
        if x.dtype != torch.float32 or x.dim() != 3:
            raise ValueError(f"SeriesData wants float32 (N, C, T); got {x.dtype} {tuple(x.shape)}")
        if self.mask is not None and self.mask.shape != (x.shape[0], x.shape[2]):
            raise ValueError(f"mask must be ({x.shape[0]}, {x.shape[2]}); got {self.mask.shape}")
        if self.labels is not None and self.labels.shape != (len(x),):
            raise ValueError(f"labels must be ({len(x)},); got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.series.shape[0]

    @property
    def num_channels(self) -> int:
        return self.series.shape[1]

    @property
    def length(self) -> int:
        return self.series.shape[2]

    def subset(self, index: torch.Tensor) -> SeriesData:
        """The series (and masks, labels) at `index`."""
        return SeriesData(
            series=self.series[index].contiguous(),
            mask=None if self.mask is None else self.mask[index],
            labels=None if self.labels is None else self.labels[index],
            classes=self.classes,
            name=self.name,
            files=None if self.files is None else [self.files[i] for i in row_positions(index)],
            skipped=self.skipped,
            factors=None if self.factors is None else self.factors.subset(index),
        )


def stack_series(
    items: list[np.ndarray], mode: str, name: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """float32 (N, C, T) from (C, T_i) arrays: equal lengths stack as they are; otherwise
    "pad" pads with zeros at the end and returns the mask, "crop" cuts to the shortest."""
    if mode not in LENGTH_MODES:
        raise SelfsupError(f"data.series_lengths must be one of {LENGTH_MODES}; got {mode!r}")
    if not items:
        raise SelfsupError(f"{name} holds no series")
    channels = {a.shape[0] for a in items}
    if len(channels) > 1:
        raise SelfsupError(f"{name}: series have different channel counts {sorted(channels)}")
    lengths = [a.shape[1] for a in items]
    if min(lengths) < 1:
        raise SelfsupError(f"{name} holds an empty series")
    if len(set(lengths)) == 1:
        return torch.from_numpy(np.stack(items).astype(np.float32)), None
    if mode == "crop":
        short = min(lengths)
        print(f"selfsup: {name}: lengths {short}..{max(lengths)}; every series cut to {short}")
        return torch.from_numpy(np.stack([a[:, :short] for a in items]).astype(np.float32)), None
    out = np.zeros((len(items), items[0].shape[0], max(lengths)), dtype=np.float32)
    mask = np.zeros((len(items), max(lengths)), dtype=bool)
    for i, a in enumerate(items):
        out[i, :, : a.shape[1]] = a
        mask[i, : a.shape[1]] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def _series_array(array: np.ndarray, what: str) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number) or array.ndim not in (2, 3):
        raise SelfsupError(
            f"{what} is {array.dtype} {array.shape}; wanted numbers (N, C, T) or (N, T)"
        )
    array = array.astype(np.float32)
    return array[:, None] if array.ndim == 2 else array


def valid_lengths(x: np.ndarray, what: str, first_row: int = 0) -> np.ndarray:
    """Each series' length in (N, C, T) `x` when NaN at its end is padding (the aeon and tsai
    convention for unequal lengths): the steps up to its last real value. An infinite value, a
    NaN followed by real values (a gap inside the series) and an all-NaN row are errors that
    name the row (counted from `first_row`)."""
    if np.isinf(x).any():
        row, channel, step = np.argwhere(np.isinf(x))[0]
        row += first_row
        raise SelfsupError(
            f"{what}: row {row} holds an infinite value (channel {channel}, step {step})"
        )
    nan = np.isnan(x)
    if not nan.any():
        return np.full(len(x), x.shape[2])
    real = ~nan.all(axis=1)  # (N, T): steps where some channel holds a value
    lengths = np.where(real.any(axis=1), x.shape[2] - np.argmax(real[:, ::-1], axis=1), 0)
    if (lengths == 0).any():
        row = first_row + int(np.argmin(lengths))
        raise SelfsupError(f"{what}: row {row} is all NaN (an empty series)")
    inside = nan & (np.arange(x.shape[2]) < lengths[:, None, None])
    if inside.any():
        row, channel, step = np.argwhere(inside)[0]
        row += first_row
        raise SelfsupError(
            f"{what}: row {row} holds NaN at step {step} (channel {channel}) followed by real "
            "values; NaN is accepted only as padding at the end of a series (unequal lengths, "
            "the aeon/tsai convention), not as a gap inside one: fill or drop that row"
        )
    return lengths


def padded_series(x: np.ndarray, mode: str, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """float32 (N, C, T) series whose NaN at the end is padding (`valid_lengths`), as tensors:
    with "pad" the padding becomes zeros and a mask of the valid steps (None when every series
    is whole), with "crop" every series is cut to the shortest one's length (announced)."""
    lengths = valid_lengths(x, what)
    longest, shortest = int(lengths.max()), int(lengths.min())
    if shortest == x.shape[2]:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), None
    if mode not in LENGTH_MODES:
        raise SelfsupError(f"data.series_lengths must be one of {LENGTH_MODES}; got {mode!r}")
    if mode == "crop":
        print(f"selfsup: {what}: lengths {shortest}..{longest}; every series cut to {shortest}")
        return torch.from_numpy(np.ascontiguousarray(x[:, :, :shortest], dtype=np.float32)), None
    x = np.nan_to_num(x[:, :, :longest], nan=0.0).astype(np.float32)
    mask = np.arange(longest) < lengths[:, None]
    return torch.from_numpy(x), torch.from_numpy(mask)


def _labels(y: np.ndarray, n: int, what: str) -> torch.Tensor:
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise SelfsupError(f"{what} is {y.dtype} {y.shape}; wanted {n} non-negative integers")
    return torch.from_numpy(y.astype(np.int64))


def load_series_npy(path: str | None, options: DataConfig) -> DataSplits:
    """`series:FILE`: a .npz (series, labels, test_series, test_labels, classes) or a .npy of
    series (+ <stem>_labels.npy); arrays shaped (N, C, T) or (N, T). The explicit prefix is the
    rule that makes a file a series source (`npy:` files are images)."""
    assert path is not None, "the registry requires series:FILE"
    file = Path(path).expanduser()
    if not file.is_file() or file.suffix not in (".npz", ".npy"):
        raise SelfsupError(f"{file}: series:FILE wants an existing .npz or .npy file")
    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {"series": loaded}
            sibling = file.with_name(f"{file.stem}_labels.npy")
            if sibling.is_file():
                arrays["labels"] = np.load(sibling, allow_pickle=False)
        else:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise SelfsupError(f"cannot read {file} as a numpy file: {e}") from e
        raise SelfsupError(
            f"{file} holds an object array (series of unequal lengths?), which is not read "
            "(loading it would run pickled code); store the series in one float array "
            "(N, C, T) padded at the end with NaN: the padding is masked"
        ) from None
    except Exception as e:
        raise SelfsupError(f"cannot read {file} as a numpy file: {e}") from e
    if "series" not in arrays:
        raise SelfsupError(f"{file} has no 'series' array (found: {', '.join(sorted(arrays))})")
    if ("labels" in arrays) != ("test_labels" in arrays) and "test_series" in arrays:
        raise SelfsupError(f"{file}: give both 'labels' and 'test_labels', or neither")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    name = f"series:{file}"

    def split(key: str, label_key: str) -> SeriesData | None:
        if key not in arrays:
            return None
        what = f"'{key}' in {name}"
        x, mask = padded_series(_series_array(arrays[key], what), options.series_lengths, what)
        y = (
            _labels(arrays[label_key], len(x), f"'{label_key}' in {name}")
            if label_key in arrays
            else None
        )
        return SeriesData(x, mask, y, classes, name)

    train = split("series", "labels")
    assert train is not None
    return match_splits(train, split("test_series", "test_labels"), options.series_lengths)


def match_splits(train: SeriesData, test: SeriesData | None, mode: str) -> DataSplits:
    """The splits checked against each other before any training: one channel count (else an
    error naming both), and one length (the shorter split padded with a mask, or with "crop"
    the longer one cut), so that the raw baseline and the encoder see alike samples."""
    if test is None:
        return DataSplits(train=train, test=None)
    if train.num_channels != test.num_channels:
        raise SelfsupError(
            f"{train.name}: the training series have {train.num_channels} channels and the test "
            f"series {test.num_channels}; both splits need the same channels"
        )
    if train.length != test.length:
        t = max(train.length, test.length) if mode == "pad" else min(train.length, test.length)
        how = "padded with a mask" if mode == "pad" else "cut (data.series_lengths=crop)"
        print(
            f"selfsup: {train.name}: training series are {train.length} steps, test series "
            f"{test.length}; both brought to {t} ({how})"
        )
        train, test = _to_length(train, t), _to_length(test, t)
    return DataSplits(train=train, test=test)


def load_ucr(path: str | None, options: DataConfig) -> DataSplits:
    """`ucr:NAME`: a UCR/UEA classification set through aeon, its train/test splits kept.
    The bundled sets (GunPoint, ArrowHead, BasicMotions, ItalyPowerDemand, OSULeaf,
    JapaneseVowels) load offline; others need aeon's download."""
    assert path is not None, "the registry requires ucr:NAME"
    try:
        from aeon.datasets import load_classification
    except ImportError as e:
        raise SelfsupError("ucr:NAME needs the aeon package (pip install aeon)") from e
    name = f"ucr:{path}"
    try:
        x_train, y_train = load_classification(path, split="train")
        x_test, y_test = load_classification(path, split="test")
    except Exception as e:
        raise SelfsupError(
            f"cannot load {name} through aeon ({e}); bundled offline: {', '.join(UCR_BUNDLED)}"
        ) from e
    classes = sorted({str(v) for v in [*y_train, *y_test]})
    lookup = {c: i for i, c in enumerate(classes)}
    mode = options.series_lengths

    def split(x: Any, y: Any, part: str) -> SeriesData:
        items = [np.asarray(a, dtype=np.float64) for a in x]
        items = [a[None] if a.ndim == 1 else a for a in items]
        # NaN at a series' end is padding (masked); NaN inside a series is an error
        items = [
            a[:, : int(valid_lengths(a[None], f"{name} ({part} split)", first_row=i)[0])]
            for i, a in enumerate(items)
        ]
        series, mask = stack_series(items, mode, name)
        labels = torch.tensor([lookup[str(v)] for v in y], dtype=torch.int64)
        return SeriesData(series, mask, labels, classes, name)

    return match_splits(split(x_train, y_train, "train"), split(x_test, y_test, "test"), mode)


def _to_length(data: SeriesData, t: int) -> SeriesData:
    n, c, length = data.series.shape
    mask = data.mask if data.mask is not None else torch.ones(n, length, dtype=torch.bool)
    if length >= t:
        series, mask = data.series[..., :t].contiguous(), mask[:, :t]
    else:
        series = torch.cat([data.series, torch.zeros(n, c, t - length)], dim=2)
        mask = torch.cat([mask, torch.zeros(n, t - length, dtype=torch.bool)], dim=1)
    keep = None if bool(mask.all()) else mask
    return SeriesData(series, keep, data.labels, data.classes, data.name, data.files, data.skipped)


def read_wav(file: Path) -> tuple[np.ndarray, int]:
    """float32 (C, T) in [-1, 1] and the sample rate of a PCM WAV file (8, 16, 24, 32 bit)."""
    try:
        with wave.open(str(file), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise SelfsupError(f"cannot read {file} as a PCM WAV file: {e}") from e
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / (1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise SelfsupError(f"{file}: {8 * width}-bit samples are not supported")
    return x.reshape(-1, channels).T.copy(), rate


def load_wav_folder(path: str | None, options: DataConfig) -> DataSplits:
    """`wav:DIR`: WAV files, in class subfolders (labelled) or flat; every file resampled to
    `data.sample_rate` (scipy's polyphase resampling), multi-channel files mixed to mono, and
    lengths padded with a mask or cropped (`data.series_lengths`)."""
    from math import gcd

    from scipy.signal import resample_poly

    assert path is not None, "the registry requires wav:DIR"
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SelfsupError(f"wav:DIR wants a folder of .wav files; {root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise SelfsupError(f"no .wav files in {root}")
    rate = options.sample_rate
    items, kept, skipped = [], [], []
    for file in files:
        try:
            x, r = read_wav(file)
            if x.shape[1] == 0:
                raise SelfsupError(f"{file} holds no samples (a zero-length WAV file)")
        except SelfsupError as err:
            if not options.skip_corrupt:
                raise SelfsupError(
                    f"{err}; delete or replace it, or pass --skip-corrupt to leave such files out"
                ) from None
            skipped.append(file)
            continue
        kept.append(file)
        x = x.mean(0, keepdims=True)
        if r != rate:
            g = gcd(r, rate)
            x = resample_poly(x, rate // g, r // g, axis=1).astype(np.float32)
        items.append(x)
    name = f"wav:{root}"
    if skipped:
        warnings.warn(
            f"{name}: left out unreadable or empty WAV files (--skip-corrupt): {len(skipped)} "
            f"(first: {skipped[0]})",
            stacklevel=3,
        )
    if not kept:
        raise SelfsupError(f"none of the {len(files)} WAV files in {root} could be read")
    series, mask = stack_series(items, options.series_lengths, name)
    parents = [f.parent.relative_to(root) for f in kept]
    labels, classes = None, None
    if all(str(p) != "." for p in parents):
        classes = sorted({str(p) for p in parents})
        labels = torch.tensor([classes.index(str(p)) for p in parents], dtype=torch.int64)
    data = SeriesData(
        series, mask, labels, classes, name, [str(f) for f in kept], skipped=len(skipped)
    )
    return DataSplits(data, None)
