"""The CLIP encoder kind: an image tower and a text tower projected into one embedding space.

`forward(images)` gives image embeddings (what is exported and evaluated like any image
encoder); `forward(token batch)` and `encode_text(strings or token batch)` give text
embeddings in the same space, so zero-shot classification and retrieval compare them by
cosine. The image tower is any image backbone (an `ImageEncoderSpec`), the text tower the text
encoder kind (a local transformers folder, pretrained or randomly initialised from its config)
or the `text-scratch` kind (a byte-level CLIP-style transformer that needs no files). Both
towers' assets (the tokenizer and model config, if any) travel with the exported weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec, preprocess_images


@dataclass(frozen=True)
class ClipEncoderSpec:
    """The two towers' specs and the width of the shared embedding space."""

    kind: ClassVar[str] = "clip"

    image: ImageEncoderSpec
    text: Any  # selfsup.models.text.TextEncoderSpec or text_scratch.ScratchTextSpec
    embed_dim: int = 512

    def __post_init__(self) -> None:
        if self.embed_dim < 1:
            raise SelfsupError(f"embed_dim must be a positive width, got {self.embed_dim}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image.to_dict(),
            "text": self.text.to_dict(),
            "text_kind": self.text.kind,
            "embed_dim": self.embed_dim,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipEncoderSpec:
        from selfsup.models.registry import spec_class

        return cls(
            ImageEncoderSpec.from_dict(d["image"]),
            spec_class(d.get("text_kind", "text")).from_dict(d["text"]),
            int(d["embed_dim"]),
        )


def is_token_batch(x: Any) -> bool:
    """Whether `x` is a dict of token ids and attention mask (the text tower's input)."""
    return isinstance(x, dict) and "input_ids" in x and "attention_mask" in x


class ClipEncoder(nn.Module):
    """Images (B, C, H, W) -> image embeddings (B, embed_dim); token batches -> text embeddings.

    The projections are linear without bias, as in CLIP. Embeddings are not normalised here:
    the loss and the evaluation normalise them.
    """

    kind: ClassVar[str] = "clip"

    def __init__(self, spec: ClipEncoderSpec, *, text_tower: nn.Module | None = None):
        super().__init__()
        from selfsup.models.registry import build_encoder

        self.spec = spec
        self.image = ImageEncoder(spec.image)
        self.text = text_tower if text_tower is not None else build_encoder(spec.text)
        self.image_projection = nn.Linear(self.image.out_dim, spec.embed_dim, bias=False)
        self.text_projection = nn.Linear(self.text.out_dim, spec.embed_dim, bias=False)
        self.out_dim: int = spec.embed_dim

    def forward(self, x: Any) -> torch.Tensor:
        return self.encode_text(x) if is_token_batch(x) else self.encode_image(x)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings (B, embed_dim) of uint8 or [0, 1] float images."""
        return self.image_projection(self.image(images))

    def encode_text(self, text: Any) -> torch.Tensor:
        """Text embeddings (B, embed_dim) of a string, a list of strings, or a token batch."""
        if not is_token_batch(text):
            device = self.text_projection.weight.device
            text = {k: v.to(device) for k, v in self.text.preprocess(text).items()}
        return self.text_projection(self.text(text))

    def tokenize_all(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """Token ids and masks of every caption, padded to the text tower's max_length."""
        return self.text.tokenize_all(captions)

    def preprocess(self, raw: Any) -> Any:
        """A string or a list of strings -> a token batch; images -> uint8 (N, C, H, W)."""
        if isinstance(raw, str) or (
            isinstance(raw, (list, tuple)) and raw and all(isinstance(s, str) for s in raw)
        ):
            return self.text.preprocess(raw)
        return preprocess_images(raw, self.spec.image)

    def save_assets(self, directory: Path) -> None:
        """The text tower's tokenizer and model config, if it has any (the image tower and the
        scratch text tower need none)."""
        self.text.save_assets(directory)

    @classmethod
    def from_assets(cls, spec: ClipEncoderSpec, directory: Path) -> ClipEncoder:
        """Both towers' architecture from the exported assets (weights loaded after)."""
        from selfsup.models.registry import encoder_class

        tower = encoder_class(spec.text.kind).from_assets(spec.text, directory)
        return cls(spec, text_tower=tower)

    def extra_repr(self) -> str:
        return f"embed_dim={self.spec.embed_dim}"
