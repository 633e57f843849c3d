"""Encoders by kind (image, text), backbones, heads and momentum-teacher helpers."""

from selfsup.models.backbones import available_backbones, build_backbone
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec, match_channels
from selfsup.models.heads import classifier_head, projection_head
from selfsup.models.registry import build_encoder, encoder_class, spec_class
from selfsup.models.teacher import cosine_momentum, ema_update, momentum_teacher

__all__ = [
    "ImageEncoder",
    "ImageEncoderSpec",
    "available_backbones",
    "build_backbone",
    "build_encoder",
    "classifier_head",
    "cosine_momentum",
    "ema_update",
    "encoder_class",
    "match_channels",
    "momentum_teacher",
    "projection_head",
    "spec_class",
]
