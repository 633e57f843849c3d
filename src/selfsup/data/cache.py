"""A disk cache of decoded image folders, so that only the first load pays for decoding.

One image store (data/store.py) per (folder, image size) in $SELFSUP_CACHE_DIR (default
~/.cache/selfsup); its index holds a fingerprint of every image file (relative path, size,
mtime), so that adding, removing, renaming or editing a file rebuilds it. (The `.pt` files
of earlier versions are ignored.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_FORMAT = 2  # bump when the stored layout changes


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


def cache_store(root: Path, image_size: int | None) -> Path:
    """The image store (data/store.py) caching the folder `root` decoded at `image_size`."""
    key = hashlib.sha1(f"{root}\0{image_size}".encode()).hexdigest()[:16]
    return cache_dir() / f"folder-{key}"
