"""The options every source loader receives, so that all loaders share one signature."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadOptions:
    """How to load: fetch missing files, skip undecodable images, resize to a square size."""

    download: bool = False
    skip_corrupt: bool = False
    image_size: int | None = None
