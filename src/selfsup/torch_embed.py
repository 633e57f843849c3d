"""`selfsup.embed` for a torch encoder: its `preprocess`, then `embedding.encode_rows` (the one
place that batches and embeds), then the options (`selfsup.serving.embed` documents them)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch

from selfsup.devices import resolve_device
from selfsup.embedding import encode_rows


def embed_torch(
    encoder: Any,
    raw: Any,
    *,
    batch_size: int,
    normalize: bool | None,
    progress: Callable[[Any], Any] | None,
    device: Any,
    convert_to: str,
) -> Any:
    """Embeddings (N, D) of `raw` by a torch encoder, on `device` (None: where it is; else it is
    moved there), as a float32 array or (convert_to "torch") a tensor on that device."""
    if device is None:
        device = _current_device(encoder)
    else:
        device = resolve_device(str(device))
        encoder.to(device)
    model_input = encoder.preprocess(raw)
    if isinstance(model_input, dict):
        rows, to_input = model_input, _identity
    else:
        rows, to_input = {"input": model_input}, _the_input
    out = encode_rows(
        encoder, rows, to_input, batch_size=batch_size, device=device, progress=progress
    )
    if normalize is None:
        normalize = bool(getattr(encoder.spec, "normalize", False))
    if normalize:
        out = torch.nn.functional.normalize(out, dim=1, eps=1e-12)
    return out.to(device) if convert_to == "torch" else out.numpy()


def _current_device(encoder: Any) -> torch.device:
    """The device of the encoder's first parameter (or buffer), else the CPU."""
    first = next(itertools.chain(encoder.parameters(), encoder.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def _identity(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def _the_input(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return batch["input"]
