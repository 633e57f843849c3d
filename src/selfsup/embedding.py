"""Turn samples into embeddings: run a frozen encoder over rows of model input, in batches.

The one place that embeds (the API, the CLI, search, the report, the modalities and evaluation
all call `encode_rows`); it knows no modality: the caller says how rows become model input.

Inside a `reuse_features()` block (the end of a run: evaluation, then the report), each model
input is embedded once per encoder: `encode_rows` keeps the features it computes, keyed by a
digest of the encoder's weights and of each row of model input, and looks them up before it
runs the encoder. The report loads the exported weights back from disk; they digest the same,
so the sentences the evaluation embedded are not embedded again (issue 19, item 18).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from selfsup.errors import SelfsupError

_MEMOS: list[dict[bytes, dict[bytes, Tensor]]] = []  # the open `reuse_features` blocks
# Rows kept per encoder: bounds the memory (100,000 x 512 floats: 200 MB), far above what the
# report re-embeds (2,000-sample subsets); rows beyond it are embedded as before, not kept.
MEMO_ROWS = 100_000


@contextmanager
def reuse_features() -> Iterator[None]:
    """Within the block, `encode_rows` embeds each row of model input once per encoder
    weights; the kept features are dropped when the block ends."""
    _MEMOS.append({})
    try:
        yield
    finally:
        _MEMOS.pop()


def encode_rows(
    encoder: nn.Module,
    rows: dict[str, Tensor],
    to_input: Callable[[dict[str, Tensor]], object],
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    progress: Callable[[range], Any] | None = None,
) -> Tensor:
    """Features (N, D) float32 on CPU of every row of `rows` (field -> (N, ...) tensors).

    `to_input` turns a batch of rows into the encoder's input (the modality's `encoder_input`):
    so images, token ids and series go through one function. Eval mode, modes restored after.
    Token rows go through in order of length (returned in their own order): a batch then holds
    little padding. Inside `reuse_features()`, rows already embedded by the same weights are
    not run again. `progress` wraps the batch starts (`selfsup.embed`'s tqdm bar).
    """
    n = len(next(iter(rows.values())))
    if n == 0:
        raise SelfsupError("no samples to embed")
    if device is None:  # the encoder's: its first parameter's (or buffer's), else the CPU
        first = next(itertools.chain(encoder.parameters(), encoder.buffers()), None)
        device = first.device if first is not None else "cpu"
    device = torch.device(device)
    modes = [(module, module.training) for module in encoder.modules()]
    encoder.eval()
    memo = _MEMOS[-1].setdefault(_weights_digest(encoder), {}) if _MEMOS else None
    order = _by_length(rows)
    out: Tensor | None = None  # (N, D), filled batch by batch: no list of chunks to concatenate
    try:
        starts = range(0, n, batch_size)
        with torch.no_grad():
            for start in progress(starts) if progress is not None else starts:
                end = start + batch_size
                picked = slice(start, end) if order is None else order[start:end]
                batch = {k: v[picked].to(device) for k, v in rows.items()}
                model_input = to_input(batch)
                feats = _embed_batch(encoder, model_input, memo, device)
                if out is None:
                    out = torch.empty(n, *feats.shape[1:], dtype=feats.dtype)
                out[picked] = feats
    finally:
        for module, was_training in modes:
            module.training = was_training
    assert out is not None
    return out


def _embed_batch(
    encoder: nn.Module, model_input: Any, memo: dict[bytes, Tensor] | None, device: torch.device
) -> Tensor:
    """Features (B, D) float32 on CPU of one batch; rows in `memo` are looked up, not run."""
    keys = _row_digests(model_input) if memo is not None else None
    if memo is None or keys is None:
        return encoder(model_input).flatten(1).float().cpu()
    missing = [i for i, key in enumerate(keys) if key not in memo]
    if not missing:
        return torch.stack([memo[key] for key in keys])
    take = torch.tensor(missing, device=device)
    feats = encoder(_take_rows(model_input, take)).flatten(1).float().cpu()
    new = dict(zip([keys[i] for i in missing], feats, strict=True))
    if len(memo) + len(new) <= MEMO_ROWS:
        memo.update(new)
    return torch.stack([new[k] if k in new else memo[k] for k in keys])


def _by_length(rows: dict[str, Tensor]) -> Tensor | None:
    """Token rows (an "attention_mask" field, in memory) in order of decreasing length, so that
    each batch holds sentences of similar length and the text encoder, which drops the columns
    that are padding in every row of a batch, runs on little padding; None for other rows."""
    mask = rows.get("attention_mask")
    if not isinstance(mask, Tensor) or mask.dim() != 2:
        return None
    if not all(isinstance(v, Tensor) for v in rows.values()):
        return None
    return torch.argsort(mask.sum(dim=1), descending=True, stable=True)


def _weights_digest(encoder: nn.Module) -> bytes:
    """A digest of every parameter and buffer (names, shapes, dtypes, values)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(type(encoder).__qualname__.encode())
    for name, tensor in encoder.state_dict().items():
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(_bytes(tensor))
    return h.digest()


def _row_digests(model_input: Any) -> list[bytes] | None:
    """One digest per row of a tensor or a dict of tensors; None for other inputs."""
    if isinstance(model_input, Tensor):
        parts = {"": model_input}
    elif isinstance(model_input, dict) and all(isinstance(v, Tensor) for v in model_input.values()):
        parts = dict(sorted(model_input.items()))
    else:
        return None
    rows = {name: t.detach().cpu().contiguous() for name, t in parts.items()}
    count = len(next(iter(rows.values())))
    # Token rows are padded to the longest of their batch: a sentence keys by its tokens, not
    # by how much padding the batch it came in gave it.
    mask = rows.get("attention_mask")
    padded = mask.shape[1] if mask is not None and mask.dim() == 2 else None
    keep = mask.bool() if padded is not None else None
    digests = []
    for i in range(count):
        h = hashlib.blake2b(digest_size=16)
        for name, t in rows.items():
            row = t[i]
            if keep is not None and row.dim() >= 1 and row.shape[0] == padded:
                row = row[keep[i]]
            h.update(f"{name}{tuple(row.shape)}{t.dtype}".encode())
            h.update(_bytes(row))
        digests.append(h.digest())
    return digests


def _bytes(t: Tensor) -> bytes:
    t = t.detach().cpu().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _take_rows(model_input: Any, index: Tensor) -> Any:
    if isinstance(model_input, Tensor):
        return model_input[index]
    return {k: v[index] for k, v in model_input.items()}


def mean_over_rows(
    figures: Callable[[dict[str, Tensor]], dict[str, Tensor]],
    rows: dict[str, Tensor],
    device: torch.device | str,
    batch_size: int = 256,
) -> dict[str, float]:
    """Per-sample figures (`figures(batch) -> {name: (B,) tensor}`, e.g. a density model's NLL)
    over every row of `rows`, batch by batch on `device` without gradients, averaged."""
    n = len(next(iter(rows.values()))) if rows else 0
    totals: dict[str, Tensor] = {}
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = {k: t[start : start + batch_size].to(device) for k, t in rows.items()}
            for name, values in figures(batch).items():
                totals[name] = totals.get(name, 0) + values.double().sum()
    return {name: float(total) / n for name, total in totals.items()}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine geometry); an all-zero row stays zero."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
