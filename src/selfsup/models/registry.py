"""Encoder kinds by name: what `encoder.json` says an exported encoder is, and how to build one.

Adding a kind is one line here (module, encoder class, spec class) plus its own module. The
modules are imported when first used, so an image run never imports `transformers`.
"""

from __future__ import annotations

import importlib
from typing import Any

from selfsup.errors import SelfsupError

# kind -> (module, encoder class, spec class)
ENCODER_KINDS: dict[str, tuple[str, str, str]] = {
    "image": ("selfsup.models.encoder", "ImageEncoder", "ImageEncoderSpec"),
    "text": ("selfsup.models.text", "TextEncoder", "TextEncoderSpec"),
    "multiview": ("selfsup.models.multiview", "MultiViewEncoder", "MultiViewEncoderSpec"),
    "series": ("selfsup.models.series", "SeriesEncoder", "SeriesEncoderSpec"),
    "ts2vec": ("selfsup.models.ts2vec", "Ts2VecEncoder", "Ts2VecSpec"),
    "tstcc": ("selfsup.models.tstcc", "TSTCCEncoder", "TSTCCEncoderSpec"),
    "clip": ("selfsup.models.clip", "ClipEncoder", "ClipEncoderSpec"),
    "text-scratch": ("selfsup.models.text_scratch", "ScratchTextEncoder", "ScratchTextSpec"),
    "text-words": ("selfsup.models.captioner", "WordTextEncoder", "WordTextSpec"),
    "rbm": ("selfsup.models.rbm", "RBMEncoder", "RBMEncoderSpec"),
    "nade": ("selfsup.models.nade", "NADEEncoder", "NADEEncoderSpec"),
    "adain": ("selfsup.models.adain", "AdainEncoder", "AdainSpec"),
    "cyclegan": ("selfsup.models.cyclegan", "CycleGANEncoder", "CycleGANEncoderSpec"),
    "mahalanobis": ("selfsup.models.mahalanobis", "MahalanobisEncoder", "MahalanobisSpec"),
    "cswm": ("selfsup.models.cswm", "CswmEncoder", "CswmSpec"),
    "word-vectors": ("selfsup.models.word_vectors", "WordVectors", "WordVectorsSpec"),
}


def _lookup(kind: str, which: int) -> Any:
    if kind not in ENCODER_KINDS:
        raise SelfsupError(
            f"unknown encoder kind {kind!r}; this selfsup knows: {', '.join(ENCODER_KINDS)}"
        )
    module, *names = ENCODER_KINDS[kind]
    return getattr(importlib.import_module(module), names[which])


def encoder_class(kind: str) -> type:
    """The encoder class of `kind` (image, text, ...)."""
    return _lookup(kind, 0)


def spec_class(kind: str) -> type:
    """The spec dataclass of `kind`, whose `from_dict` reads what `to_dict` wrote."""
    return _lookup(kind, 1)


def build_encoder(spec: Any) -> Any:
    """A freshly initialised encoder of the spec's kind (random weights, or a pretrained start)."""
    return encoder_class(spec.kind)(spec)
