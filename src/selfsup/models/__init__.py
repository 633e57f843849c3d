"""Backbones, the exported encoder, and the heads methods use."""

from selfsup.models.backbones import available_backbones, build_backbone
from selfsup.models.encoder import Encoder, EncoderSpec
from selfsup.models.heads import projection_head

__all__ = ["Encoder", "EncoderSpec", "available_backbones", "build_backbone", "projection_head"]
