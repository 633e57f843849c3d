"""The options every source loader receives, so that all loaders share one signature."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadOptions:
    """How to load: fetch missing files, skip undecodable images, resize to a square size."""

    download: bool = False
    skip_corrupt: bool = False
    image_size: int | None = None
    series_lengths: str = "pad"  # series of different lengths: pad (with a mask) | crop
    sample_rate: int = 16000  # wav: every file is resampled to this rate (Hz)
    stream_text: str = "auto"  # text:FILE read on demand: auto (above 256 MB) | true | false
