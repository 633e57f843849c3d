"""Run a frozen encoder over a data split, in batches, and collect its pooled features."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from selfsup.errors import SelfsupError


def encoder_device(encoder: nn.Module) -> torch.device:
    """The device of the encoder's first parameter (or buffer); CPU if it has neither."""
    param = next(encoder.parameters(), None)
    if param is None:
        param = next(encoder.buffers(), None)
    return param.device if param is not None else torch.device("cpu")


def _to_unit_float(x: Tensor) -> Tensor:
    return x.float().div_(255.0)


def extract_features(
    encoder: nn.Module,
    images: Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Features (N, D) float32 on CPU of uint8 images (N, C, H, W), computed in eval mode.

    Each batch goes to `device` (default: the encoder's) and becomes float [0, 1] through
    `transform` if given, else x / 255. Every submodule's train/eval flag is restored afterwards.
    """
    if images.ndim < 2 or len(images) == 0:
        raise SelfsupError(f"no images to embed: got a tensor of shape {tuple(images.shape)}")
    if transform is None and images.dtype != torch.uint8:
        raise SelfsupError(
            f"extract_features expects uint8 images (N, C, H, W), got {images.dtype}; "
            "pass transform= to convert other inputs"
        )
    if batch_size < 1:
        raise SelfsupError(f"batch_size must be at least 1, got {batch_size}")
    device = torch.device(device) if device is not None else encoder_device(encoder)
    transform = transform or _to_unit_float
    modes = [(module, module.training) for module in encoder.modules()]
    encoder.eval()
    chunks = []
    try:
        # no_grad, not inference_mode: inference tensors cannot be saved for a later backward,
        # and callers may go on training the same encoder.
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size].to(device, non_blocking=True)
                feats = encoder(transform(batch))
                chunks.append(feats.flatten(1).float().cpu())
    finally:
        for module, was_training in modes:
            module.training = was_training
    return torch.cat(chunks)


def encode_rows(
    encoder: nn.Module,
    rows: dict[str, Tensor],
    to_input: Callable[[dict[str, Tensor]], object],
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> Tensor:
    """Features (N, D) float32 on CPU of every row of `rows` (field -> (N, ...) tensors).

    `to_input` turns a batch of rows into the encoder's input (the modality's `encoder_input`):
    this is how evaluation embeds images and token ids alike. Eval mode, modes restored after.
    """
    n = len(next(iter(rows.values())))
    if n == 0:
        raise SelfsupError("no samples to embed")
    device = torch.device(device) if device is not None else encoder_device(encoder)
    modes = [(module, module.training) for module in encoder.modules()]
    encoder.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                batch = {k: v[start : start + batch_size].to(device) for k, v in rows.items()}
                chunks.append(encoder(to_input(batch)).flatten(1).float().cpu())
    finally:
        for module, was_training in modes:
            module.training = was_training
    return torch.cat(chunks)
