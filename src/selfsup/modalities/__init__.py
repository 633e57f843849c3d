"""The modalities by name; adding one is its own file here plus one line in MODALITIES."""

from __future__ import annotations

import importlib

from selfsup.errors import SelfsupError
from selfsup.modalities.base import Modality

# name -> "module:class"; imported when first used (text pulls in transformers).
MODALITIES: dict[str, str] = {
    "image": "selfsup.modalities.image:ImageModality",
    "text": "selfsup.modalities.text:TextModality",
    "series": "selfsup.modalities.series:SeriesModality",
    "pair": "selfsup.modalities.pair:PairModality",
    "transitions": "selfsup.modalities.transitions:TransitionsModality",
}


def get_modality(name: str) -> Modality:
    """The modality called `name` (image, text)."""
    if name not in MODALITIES:
        raise SelfsupError(f"unknown modality {name!r}; choose one of: {', '.join(MODALITIES)}")
    module, _, cls = MODALITIES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["MODALITIES", "Modality", "get_modality"]
