"""What a user holds -> an ONNX graph's inputs, in numpy alone (no torch): images, series and
sentences prepared exactly as the torch encoders' `preprocess` prepares them, so that a loaded
ONNX export (`selfsup.onnx_encoder`) embeds the same arrays as the run's encoder.

Images follow `selfsup.models.encoder.preprocess_images` rule for rule (accepted shapes and
dtypes, grey <-> RGB, resize to cover then centre crop as `selfsup.data.resize.resize_to`);
series `selfsup.models.series_input.series_tensor`; sentences the saved tokenizer with the text
encoder's truncation and padding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.errors import SelfsupError
from selfsup.image_layout import channels_first

# ITU-R 601 luma, as `selfsup.models.encoder.match_channels` turns RGB grey (float32 there too)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)


def is_text(raw: Any) -> bool:
    """Whether `raw` is a string or a non-empty list/tuple of strings."""
    if isinstance(raw, str):
        return True
    return isinstance(raw, (list, tuple)) and bool(raw) and all(isinstance(s, str) for s in raw)


def _as_array(raw: Any) -> np.ndarray:
    """A numpy array of `raw`; a torch tensor (when torch is in use) through its own numpy()."""
    if hasattr(raw, "detach") and hasattr(raw, "cpu"):  # a torch tensor: no torch import here
        raw = raw.detach().cpu().numpy()
    return np.asarray(raw)


# -- images ------------------------------------------------------------------------------------


def image_pixels(raw: Any, prep: dict[str, Any]) -> np.ndarray:
    """float32 (N, C, H, W) in [0, 1] at the graph's size from images as a user holds them: the
    ONNX twin of `preprocess_images` (then uint8 / 255, as `ImageEncoder.forward` does)."""
    return image_uint8(raw, prep).astype(np.float32) / np.float32(255)


def image_uint8(raw: Any, prep: dict[str, Any]) -> np.ndarray:
    """uint8 (N, C, H, W) at the graph's size: `preprocess_images` in numpy."""
    channels = int(prep["channels"])
    size = prep["image_size"]
    hw = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
    if is_text(raw):
        raise SelfsupError(
            "this is an image encoder; pass images (a uint8 array or tensor), not text"
        )
    x = _as_array(raw)
    if x.dtype.kind == "f":
        if x.size and (x.min() < 0 or x.max() > 1):
            raise SelfsupError(
                "float images must hold values in [0, 1]; pass uint8 pixels or divide by 255"
            )
        # torch's mul(255).round_() in the array's own dtype: round half to even, as np.round
        x = np.round(x * x.dtype.type(255)).astype(np.uint8)
    elif x.dtype != np.uint8:
        raise SelfsupError(f"images must be uint8 or float in [0, 1], got {_dtype_name(x)}")
    x = channels_first(x, channels)
    if x.shape[1] != channels and {int(x.shape[1]), channels} - {1, 3}:
        raise SelfsupError(
            f"this encoder takes images of {channels} channels {_group_text(prep)}; "
            f"got {x.shape[1]}"
        )
    return np.ascontiguousarray(resize_to(match_channels(x, channels), hw))


def _dtype_name(x: np.ndarray) -> str:
    """The dtype as torch names it (the torch path's message): torch.int64, torch.float16."""
    return f"torch.{x.dtype.name}"


def _group_text(prep: dict[str, Any]) -> str:
    groups = prep.get("channel_groups") or ()  # named input channels (rgb 3 + depth 1)
    return "(" + " + ".join(f"{g} {c}" for g, c in groups) + ")" if groups else ""


def match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, C, H, W) to `channels` (grey <-> RGB), as `encoder.match_channels`."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 1:
        weighted = images.astype(np.float32) * _LUMA
        grey = (weighted[:, 0:1] + weighted[:, 1:2]) + weighted[:, 2:3]
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)
    return np.repeat(images, channels, axis=1)


def resize_to(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, C, h, w): scale to cover (h, w), aspect kept, then centre crop;
    `selfsup.data.resize.resize_to` to the pixel (see `_resample`)."""
    h, w = size
    in_h, in_w = images.shape[-2:]
    if (in_h, in_w) == (h, w):
        return images
    scale = max(h / in_h, w / in_w)
    cover = (max(h, round(in_h * scale)), max(w, round(in_w * scale)))
    resized = _resample(images, cover)
    top = round((cover[0] - h) / 2.0)  # torchvision's centre-crop anchor
    left = round((cover[1] - w) / 2.0)
    return resized[..., top : top + h, left : left + w]


def _resample(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of uint8 images, horizontal pass then vertical, each pass
    rounded to uint8: the fixed-point arithmetic torch runs for torchvision's uint8 resize
    (`_upsample_bilinear2d_aa` on uint8: int16 weights, PIL-SIMD's scheme). Written here
    because neither PIL (22-bit weights: off by one on some pixels) nor any numpy library
    computes the same integers, and serving must not import torch. torchvision takes this path
    on CPUs with AVX2/AVX-512 and on ARM; elsewhere it resizes in float and may differ by 1."""
    h, w = size
    out = images
    if out.shape[-1] != w:
        out = _resample_axis(out, w, axis=-1)
    if out.shape[-2] != h:
        out = _resample_axis(out, h, axis=-2)
    return out


def _resample_axis(images: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One pass of `_resample` along `axis` (-1 horizontal, -2 vertical), in int32 as torch."""
    index, weights, precision = _int16_weights(images.shape[axis], out_size)
    pixels = images.astype(np.int32)
    shape = list(images.shape)
    shape[axis] = out_size
    sums = np.full(shape, 1 << (precision - 1), dtype=np.int32)
    along = (-1, 1) if axis == -2 else (-1,)  # weights broadcast along the resized axis
    for k in range(index.shape[1]):  # a few taps per output pixel: one gather each
        sums += np.take(pixels, index[:, k], axis=axis) * weights[:, k].reshape(along)
    return np.clip(sums >> precision, 0, 255).astype(np.uint8)


def _int16_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Input indices and integer weights (out, taps) of the antialiased triangle filter and
    their precision (bits), as torch's `_compute_indices_int16_weights_aa` (double maths in
    the same order; unused taps weigh 0)."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    rows: list[tuple[int, list[float]]] = []
    w_max = 0.0
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xsize = min(int(center + support + 0.5), in_size) - xmin
        ws = [max(0.0, 1.0 - abs((j + xmin - center + 0.5) * invscale)) for j in range(xsize)]
        total = 0.0
        for v in ws:
            total += v
        if total != 0.0:
            ws = [v / total for v in ws]
        w_max = max([w_max, *ws])
        rows.append((xmin, ws))
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    taps = max(len(ws) for _, ws in rows)
    index = np.zeros((out_size, taps), dtype=np.intp)
    weights = np.zeros((out_size, taps), dtype=np.int32)
    for i, (xmin, ws) in enumerate(rows):
        index[i, : len(ws)] = np.arange(xmin, xmin + len(ws))
        weights[i, : len(ws)] = [math.trunc(0.5 + v * (1 << precision)) for v in ws]
    return index, weights, precision


# -- series ------------------------------------------------------------------------------------


def series_array(raw: Any, in_channels: int) -> np.ndarray:
    """float32 (N, C, T) from series shaped (N, C, T) or (N, T) (C = 1): `series_tensor`."""
    if is_text(raw):
        raise SelfsupError("this is a series encoder; pass arrays (N, C, T), not text")
    x = _as_array(raw)
    if x.ndim == 2:
        x = x[:, None]
    if x.ndim != 3 or x.shape[1] != in_channels:
        raise SelfsupError(
            f"series must be (N, {in_channels}, T) or (N, T) for one channel; got {tuple(x.shape)}"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


# -- sentences ---------------------------------------------------------------------------------


class SentenceTokenizer:
    """The tokenizer an export saved (`tokenizer/tokenizer.json`, read by the `tokenizers`
    library alone), cutting at max_length and padding to the longest row as
    `TextEncoder.preprocess` does through transformers."""

    def __init__(self, folder: Path, max_length: int, padding_side: str | None = None):
        from tokenizers import Tokenizer

        file = folder / "tokenizer.json"
        if not file.is_file():
            raise SelfsupError(
                f"{folder} has no tokenizer.json: a text ONNX export carries its tokenizer in "
                "tokenizer/ beside the graph; export the run again"
            )
        self.tokenizer = Tokenizer.from_file(str(file))
        config = _read_json(folder / "tokenizer_config.json")
        pad_token = _token_text(config.get("pad_token"))
        if pad_token is None:
            pad_token = _token_text(_read_json(folder / "special_tokens_map.json").get("pad_token"))
        pad_id = self.tokenizer.token_to_id(pad_token) if pad_token is not None else None
        self.pad_id = 0 if pad_id is None else int(pad_id)
        padding_side = padding_side or config.get("padding_side", "right")
        self.left = padding_side == "left"
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.max_length = max_length

    def __call__(self, sentences: list[str]) -> dict[str, np.ndarray]:
        """input_ids and attention_mask int64 (N, L), L the longest row (at most max_length)."""
        encoded = self.tokenizer.encode_batch(sentences)
        width = max(len(e.ids) for e in encoded)
        ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for n, e in enumerate(encoded):
            row = slice(width - len(e.ids), width) if self.left else slice(0, len(e.ids))
            ids[n, row] = e.ids
            mask[n, row] = 1
        return {"input_ids": ids, "attention_mask": mask}


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _token_text(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None
