"""The one rule for how images a user holds are laid out, shared by the torch encoders'
`preprocess` and ONNX serving's numpy copy of it (so the two accept exactly the same arrays).
Works on numpy arrays and torch tensors alike and imports neither torch nor numpy."""

from __future__ import annotations

from typing import Any

from selfsup.errors import SelfsupError


def channels_first(x: Any, channels: int) -> Any:
    """(N, C, H, W) from (N, C, H, W), (N, H, W, C), (N, H, W) or one image (H, W), (C, H, W),
    (H, W, C), where C is grey, RGB or the encoder's own `channels`; one error otherwise."""
    ok = {1, 3, channels}  # grey, RGB, or the encoder's own channels (RGB-D: 4)
    if x.ndim == 2:  # one grey image (H, W)
        x = x[None, None]
    elif x.ndim == 3:  # a stack of grey images (N, H, W), or one image (C, H, W) / (H, W, C)
        if x.shape[0] in ok and x.shape[-1] not in ok:
            x = x[None]
        elif x.shape[-1] in ok and x.shape[0] not in ok:
            x = _permute(x, (2, 0, 1))[None]
        else:
            x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in ok and x.shape[-1] in ok:
        x = _permute(x, (0, 3, 1, 2))
    if x.ndim != 4 or x.shape[1] not in ok:
        raise SelfsupError(
            f"images must be shaped (N, C, H, W), (N, H, W, C) or (N, H, W) with C in "
            f"{sorted(ok)}; got {tuple(x.shape)}"
        )
    return x


def _permute(x: Any, order: tuple[int, ...]) -> Any:
    """Axes reordered: torch's `permute`, numpy's `transpose` (both views)."""
    return x.permute(*order) if hasattr(x, "permute") else x.transpose(*order)
