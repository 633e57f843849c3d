"""A disk cache of decoded image folders, so that only the first load pays for decoding.

One file per (folder, image size) in $SELFSUP_CACHE_DIR (default ~/.cache/selfsup); it holds a
fingerprint of every image file (relative path, size, mtime), so that adding, removing,
renaming or editing a file rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch

_FORMAT = 1  # bump when the stored layout changes


def cache_dir() -> Path:
    """$SELFSUP_CACHE_DIR, else $XDG_CACHE_HOME/selfsup, else ~/.cache/selfsup."""
    if os.environ.get("SELFSUP_CACHE_DIR"):
        return Path(os.environ["SELFSUP_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "selfsup"


def fingerprint(root: Path, files: list[str], image_size: int | None) -> str:
    """A digest of the files' relative paths, sizes and modification times, and the resize."""
    digest = hashlib.sha1(f"format={_FORMAT} size={image_size}\n".encode())
    prefix = len(str(root))
    for file in files:  # every file lies under root
        st = os.stat(file)
        digest.update(f"{file[prefix:]}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_file(root: Path, image_size: int | None) -> Path:
    key = hashlib.sha1(f"{root}\0{image_size}".encode()).hexdigest()[:16]
    return cache_dir() / f"folder-{key}.pt"


def load_cached(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The stored payload when `path` exists and matches `fingerprint`, else None."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, weights_only=True)
    except Exception:  # a cut-short or foreign file: rebuild it
        return None
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return None
    return stored["payload"]


def save_cached(path: Path, fingerprint: str, payload: dict[str, Any]) -> None:
    """Write atomically (temporary file, then rename); failing to write is only a warning."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"fingerprint": fingerprint, "payload": payload}, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write the decoded-image cache {path}: {e}", stacklevel=3)
