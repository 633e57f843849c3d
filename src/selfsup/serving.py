"""`selfsup.load` and `selfsup.embed`: the two calls that serving needs. Importing this module
imports no torch, and neither call does for an ONNX export (`selfsup.onnx_encoder`, run by
onnxruntime); a selfsup encoder (a run, an encoder folder, a torch module) brings torch in when
it is met, and embeds through `selfsup.embedding.encode_rows`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.errors import SelfsupError
from selfsup.onnx_encoder import OnnxClipEncoder, OnnxEncoder, load_onnx, onnx_target

CONVERSIONS = ("numpy", "torch")
# Samples per forward pass by default: sentence-transformers' 32. The 512 `selfsup.embed` used
# before was no faster in general: on one CPU thread a CIFAR ResNet-18 embedded 1.8-2.2x
# faster at 32, the digits convnet 1.7x faster at 512, MiniLM either way by run
# (benchmarks/embed_batch_size.py, docs/export.md); and 32 keeps a large model's activations
# within a small GPU's memory.
BATCH_SIZE = 32
logger = logging.getLogger("selfsup")


def load(path: str | Path, device: Any = None) -> Any:
    """An encoder from `path`: a run directory or a folder with encoder.json (the torch encoder,
    in eval mode, on `device`, default the CPU), or an ONNX export (a `.onnx` file, or a folder
    holding model.onnx, or CLIP's image.onnx and text.onnx), run by onnxruntime without torch.

    `encoder.preprocess(raw)` turns images, sentences or series into its input and
    `selfsup.embed(encoder, raw)` embeds them. Encoders exported before kinds existed (format
    /1) load as image encoders."""
    path = Path(path)
    if onnx_target(path):
        return load_onnx(path, None if device is None else str(device))
    from selfsup.devices import resolve_device
    from selfsup.export import load as load_encoder

    return load_encoder(path, device="cpu" if device is None else resolve_device(str(device)))


def embed(
    encoder: Any,
    raw: Any,
    *,
    batch_size: int = BATCH_SIZE,
    normalize: bool | None = None,
    show_progress_bar: bool | None = None,
    device: Any = None,
    convert_to: str = "numpy",
) -> Any:
    """Embeddings (N, D) of what a user holds, with sentence-transformers' `encode` options.

    `encoder`: a loaded encoder (torch or ONNX), a run directory, an encoder folder or an ONNX
    export (a .onnx file or its folder), loaded with `selfsup.load`. `raw`: images for an image
    encoder (uint8, or float in [0, 1]; (N, C, H, W), (N, H, W, C) or (N, H, W); resized to the
    encoder's size), a string or a list of strings for a text encoder or a word-vector table,
    series (N, C, T) or (N, T) for a series encoder; a CLIP encoder embeds strings with its
    text tower and images with its image tower, in one space. Always (N, D), one row a sample
    (sentence-transformers gives one 1-D vector for one string).

    - `batch_size`: samples per forward pass; the result does not depend on it (rows of tokens
      go longest first, as in sentence-transformers), up to float rounding. Default 32, as
      sentence-transformers.
    - `normalize`: rows scaled to unit length (sentence-transformers' `normalize_embeddings`).
      None (the default) does what the encoder's model says: an encoder from a
      sentence-transformers folder with a Normalize module (or trained from one, or its ONNX
      export) gives unit vectors, as sentence-transformers' `encode` does; others do not.
    - `show_progress_bar`: a tqdm bar over the batches on stderr. None (the default) shows it
      when the `selfsup` logger's effective level is INFO or DEBUG, as sentence-transformers
      reads its own logger.
    - `device`: where the encoder runs. None: where it is (a torch encoder's current device; an
      encoder loaded here from a path: the CPU). A torch encoder is moved there, as
      sentence-transformers moves its model. An ONNX encoder runs on onnxruntime's CPU provider,
      or its CUDA provider for "cuda" / "cuda:N".
    - `convert_to`: "numpy" (default) a float32 array (`convert_to_numpy`); "torch" one tensor
      (`convert_to_tensor`), on `device` for a torch encoder and on the CPU for an ONNX one.
    """
    _check_options(batch_size, normalize, show_progress_bar, convert_to)
    if isinstance(encoder, (str, Path)):
        encoder = load(encoder, device=device)
    bar = _progress_bar(show_progress_bar)
    if isinstance(encoder, (OnnxEncoder, OnnxClipEncoder)):
        out = encoder.embed(
            raw, batch_size=batch_size, device=None if device is None else str(device), progress=bar
        )
        unit = encoder.normalize if normalize is None else normalize
        out = _unit_rows(out) if unit else out
        return _torch().from_numpy(out) if convert_to == "torch" else out
    from selfsup.torch_embed import embed_torch

    return embed_torch(
        encoder,
        raw,
        batch_size=batch_size,
        normalize=normalize,
        progress=bar,
        device=device,
        convert_to=convert_to,
    )


def _check_options(
    batch_size: Any, normalize: Any, show_progress_bar: Any, convert_to: Any
) -> None:
    """One clear error for a bad option, before anything is loaded or decoded."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise SelfsupError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise SelfsupError(f"batch_size must be a positive integer, got {batch_size}")
    if normalize is not None and not isinstance(normalize, (bool, np.bool_)):
        raise SelfsupError(f"normalize must be True, False or None, got {normalize!r}")
    if show_progress_bar is not None and not isinstance(show_progress_bar, (bool, np.bool_)):
        raise SelfsupError(
            f"show_progress_bar must be True, False or None, got {show_progress_bar!r}"
        )
    if not isinstance(convert_to, str) or convert_to not in CONVERSIONS:
        raise SelfsupError(
            f"convert_to must be one of {', '.join(map(repr, CONVERSIONS))}, got {convert_to!r}"
        )


def _progress_bar(show: bool | None) -> Any:
    """A function wrapping the batch starts in a tqdm bar on stderr, or None for no bar."""
    if show is None:
        show = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
    if not show:
        return None
    from tqdm.auto import tqdm

    return lambda starts: tqdm(starts, desc="Batches")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero (as `embedding.unit_rows`)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SelfsupError(
            "convert_to='torch' needs torch, which is not installed; use convert_to='numpy'"
        ) from None
    return torch
