"""A text tower trained from scratch: a byte-level tokenizer and a small CLIP-style transformer.

It needs no downloaded model and no tokenizer files: text is UTF-8 bytes (256 ids) plus three
special ids (padding, start of text, end of text), so every string has a tokenisation, the
tokenizer is the same for every run, and nothing but the spec has to be saved with the weights
(the exported `encoder.json` rebuilds it exactly; `save_assets` writes nothing).

The transformer follows CLIP's text encoder (Radford et al., 2021, section 2.4): learned
token and position embeddings, pre-LayerNorm blocks with *causal* (masked) self-attention, a
final LayerNorm, and the features of the end-of-text token of the top layer as the sentence's
features. Causal, as in the paper: the end-of-text token is the only one that has seen the
whole caption, and causality keeps the tower usable as a language model later; a padding token
comes after the end-of-text token, so the causal mask alone keeps padding out of every real
token's attention (no padding mask is needed). CLIP's own tower is 12 layers, 512 wide, 8
heads, a BPE vocabulary of 49,152 and 76 tokens; the defaults here are small for small data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.text import Pooling, TokenEncoder, sentence_list

PAD, SOT, EOT = 0, 1, 2
SPECIALS = 3
VOCAB = 256 + SPECIALS


@dataclass(frozen=True)
class ScratchTextSpec:
    """The architecture of a from-scratch text tower (its tokenizer is fixed: UTF-8 bytes)."""

    kind: ClassVar[str] = "text-scratch"

    width: int = 256  # CLIP: 512
    layers: int = 4  # CLIP: 12
    heads: int = 4  # CLIP: 8
    context: int = 77  # tokens per caption, start and end of text included (CLIP: 77)
    dropout: float = 0.0  # CLIP trains without dropout

    def __post_init__(self) -> None:
        if self.width < 1 or self.layers < 1 or self.heads < 1:
            raise SelfsupError(
                "the scratch text tower needs a positive width, layers and heads; got "
                f"width {self.width}, layers {self.layers}, heads {self.heads}"
            )
        if self.width % self.heads:
            raise SelfsupError(
                f"the scratch text tower's width ({self.width}) must be divisible by its heads "
                f"({self.heads})"
            )
        if self.context < 3:
            raise SelfsupError(
                f"the scratch text tower's context must hold at least 3 tokens, got {self.context}"
            )
        if not 0 <= self.dropout < 1:
            raise SelfsupError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScratchTextSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def byte_tokenize(sentences: list[str], context: int, pad_to: int | None = None) -> dict:
    """Token ids and attention masks: [SOT] utf-8 bytes (+3) [EOT], right-padded with PAD.

    A sentence longer than `context` is cut and still ends with EOT (as CLIP truncates).
    Rows are padded to `pad_to` (default: the longest row).
    """
    rows = []
    for s in sentences:
        body = [b + SPECIALS for b in s.encode("utf-8")][: context - 2]
        rows.append([SOT, *body, EOT])
    return pad_rows(rows, pad_to)


def pad_rows(rows: list[list[int]], pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Token id rows right-padded with PAD to `pad_to` (default: the longest row), with their
    attention masks."""
    width = pad_to if pad_to is not None else max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class ScratchTextEncoder(TokenEncoder):
    """Token ids (B, L) and their attention mask -> end-of-text features (B, width): the
    transformer's token states, then `Pooling("last")`."""

    kind: ClassVar[str] = "text-scratch"

    def __init__(self, spec: ScratchTextSpec):
        super().__init__()
        self.spec = spec
        self.token_embedding = nn.Embedding(VOCAB, spec.width)
        self.position_embedding = nn.Parameter(torch.empty(spec.context, spec.width))
        block = nn.TransformerEncoderLayer(
            spec.width,
            spec.heads,
            dim_feedforward=4 * spec.width,
            dropout=spec.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(block, spec.layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(spec.width)
        self.pooling = Pooling("last")  # CLIP: the end-of-text token's features
        self.out_dim: int = spec.width
        # CLIP's initialisation: small normal token and position embeddings
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(B, L, width) features of every token after the final LayerNorm, and the mask; token
        t has seen tokens 1..t only (causal self-attention); all-padding columns dropped."""
        mask = batch["attention_mask"]
        length = max(int(mask.sum(dim=1).max()), 1) if mask.numel() else 1
        if length > self.spec.context:
            raise SelfsupError(
                f"token rows of {length} exceed the text tower's context ({self.spec.context})"
            )
        x = self.token_embedding(batch["input_ids"][:, :length]) + self.position_embedding[:length]
        causal = torch.triu(
            torch.full((length, length), float("-inf"), device=x.device, dtype=x.dtype), 1
        )
        states = self.final_norm(self.transformer(x, mask=causal, is_causal=True))
        return {"token_states": states, "attention_mask": mask[:, :length]}

    def preprocess(self, raw: Any) -> dict[str, torch.Tensor]:
        """Token ids and mask of a sentence or a list of sentences (cut to the context)."""
        return byte_tokenize(sentence_list(raw), self.spec.context)

    def tokenize_all(self, sentences: list[str]) -> dict[str, torch.Tensor]:
        """Token ids and masks of a whole data set, padded to the context (rows of one width)."""
        return byte_tokenize(sentences, self.spec.context, pad_to=self.spec.context)

    def save_assets(self, directory: Path) -> None:
        """Nothing to save: the byte tokenizer is fixed and the spec describes the model."""

    @classmethod
    def from_assets(cls, spec: ScratchTextSpec, directory: Path) -> ScratchTextEncoder:
        """The architecture from its spec alone (weights loaded after)."""
        return cls(spec)

    def extra_repr(self) -> str:
        s = self.spec
        return f"bytes, causal, width={s.width}, layers={s.layers}, heads={s.heads}"
