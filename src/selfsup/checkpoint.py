"""Checkpoints: atomic writes and the full state needed for a resume that continues exactly."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.errors import SelfsupError


def rng_state() -> dict[str, Any]:
    """Every random generator a training step draws from (augmentation uses torch's)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over `path`.

    A crash mid-write leaves the previous checkpoint intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by `atomic_save`, with a clear error if it is missing or bad."""
    if not path.is_file():
        raise SelfsupError(
            f"no checkpoint at {path}; start without --resume, or point --out at the run"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise SelfsupError(
            f"checkpoint {path} could not be read ({err}); it may be damaged"
        ) from None
