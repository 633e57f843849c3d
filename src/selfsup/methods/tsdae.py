"""TSDAE (Wang, Reimers & Gurevych 2021, "TSDAE: Using Transformer-based Sequential Denoising
Auto-Encoder for Unsupervised Sentence Embedding Learning", Findings of EMNLP): damage each
sentence by deleting about 60% of its tokens, encode the damaged sentence to ONE vector, and
make a transformer decoder rebuild the ORIGINAL sentence from that vector alone. The vector has
to carry the sentence's meaning, since nothing else reaches the decoder.

- Noise: word deletion (the paper's best noise, ratio 0.6), per sentence at random, special
  tokens and order kept (`word_deletion` in augment/text.py, batched on the device). It deletes
  round(0.6 n) of a sentence's n content tokens (at least one is kept) where the paper's code
  drops each word with probability 0.6: the same rate without its variance.
- Encoder: the run's text encoder and its pooling (`model.pooling`; the paper pools with CLS,
  `--set model.pooling=cls`). The pooled vector is the decoder's whole memory (length 1), so
  its cross-attention output is a function of that vector alone.
- Decoder: `torch.nn.TransformerDecoder` (post-LN, GELU, as deep and wide as the encoder by
  default), with the encoder's word embeddings tied as its input embeddings and as its output
  projection (plus a BERT-style transform and bias), and its own position embeddings. The paper
  builds a BERT decoder (is_decoder, cross-attention) tied to the encoder; this lighter one works
  for any transformers encoder that has input embeddings, not only BERT-like ones, and keeps
  the decoder's self-attention weights its own (the paper ties them to the encoder's). It lives
  in the method and is not exported.
- Loss: token cross-entropy with teacher forcing, padding ignored (`token_cross_entropy`);
  token accuracy is logged.

Paper settings (BERT-base, 100k unlabelled sentences): deletion 0.6, CLS pooling, batch 8,
AdamW with a constant lr of 3e-5, one epoch. Under DDP each process averages its own tokens and
DDP averages the processes (as sentence-transformers does), so nothing is gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.augment.text import word_deletion
from selfsup.errors import SelfsupError
from selfsup.losses import token_accuracy, token_cross_entropy
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.text import drop_padding_columns


@dataclass
class TSDAEConfig:
    deletion: float = 0.6  # fraction of each sentence's content tokens deleted (paper: 0.6)
    decoder_layers: int | None = None  # None: as many as the encoder (the paper's tied decoder)
    decoder_heads: int | None = None  # None: the encoder's attention heads
    decoder_dropout: float | None = None  # None: the encoder's hidden dropout (BERT: 0.1)

    def __post_init__(self) -> None:
        if not 0.0 <= self.deletion < 1.0:
            raise ValueError(f"deletion must be in [0, 1), got {self.deletion}")
        if self.decoder_layers is not None and self.decoder_layers < 1:
            raise ValueError("decoder_layers must be at least 1 (or None: the encoder's depth)")
        if self.decoder_heads is not None and self.decoder_heads < 1:
            raise ValueError("decoder_heads must be at least 1")
        if self.decoder_dropout is not None and not 0.0 <= self.decoder_dropout < 1.0:
            raise ValueError("decoder_dropout must be in [0, 1)")


class SentenceDecoder(nn.Module):
    """A transformer decoder over the original tokens whose cross-attention memory is one
    pooled vector (B, D); input and output embeddings are the tied `embeddings` table."""

    def __init__(
        self,
        embeddings: nn.Embedding,
        layers: int,
        heads: int,
        feedforward: int,
        max_length: int,
        dropout: float,
    ):
        super().__init__()
        dim = embeddings.embedding_dim
        self._embeddings = [embeddings]  # a list: the table belongs to the encoder, not here
        self.positions = nn.Embedding(max_length, dim)
        nn.init.normal_(self.positions.weight, std=0.02)  # BERT's scale, like the word table
        self.embed_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerDecoderLayer(
            dim, heads, feedforward, dropout, activation="gelu", batch_first=True
        )
        self.layers = nn.TransformerDecoder(layer, layers)
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, memory: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) at each position of `ids` (B, L), seeing the tokens up to it and the
        vector `memory` (B, D)."""
        table = self._embeddings[0].weight
        length = ids.shape[1]
        if length > self.positions.num_embeddings:
            raise SelfsupError(
                f"the decoder has {self.positions.num_embeddings} positions; got {length} tokens"
            )
        steps = torch.arange(length, device=ids.device)
        x = nn.functional.embedding(ids, table) + self.positions(steps)
        x = self.dropout(self.embed_norm(x))
        causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1)
        h = self.layers(
            x,
            memory.unsqueeze(1).to(x.dtype),  # memory of length 1: the sentence vector alone
            tgt_mask=causal,
            tgt_key_padding_mask=~mask.bool(),
            tgt_is_causal=True,
        )
        return nn.functional.linear(self.transform(h), table, self.bias)


@register
class TSDAE(Method):
    """Encoder f (exported), decoder g (dropped at export); with x~ the sentence x with 60% of
    its tokens deleted: loss token_cross_entropy(g(f(x~), x_<t), x_t)."""

    name = "tsdae"
    family = "sentences, self-prediction"
    paper = "Wang, Reimers & Gurevych 2021, TSDAE"
    summary = "decode the sentence from the pooled vector of a damaged copy"
    views_note = (
        "none of the data's; the method deletes {cfg.deletion:.0%} of each sentence's "
        "tokens (method.deletion) and decodes the whole sentence back"
    )
    Config = TSDAEConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 3e-5,
        "weight_decay": 0.0,
        "warmup": 0.0,
    }
    optimiser_reference = "the paper's, AdamW 3e-5, constant (at batch 8, not scaled with batch)"
    inputs = frozenset({"input_ids", "attention_mask"})
    modalities = frozenset({"text"})

    def __init__(self, spec: Any, cfg: TSDAEConfig, augment: Any):
        if augment is not None:
            raise SelfsupError(
                "tsdae damages sentences by its own deletion (method.deletion); leave "
                "method.augment unset"
            )
        super().__init__(spec, cfg, augment)
        tokenizer = self.encoder.tokenizer
        embeddings = self.encoder.word_embeddings()
        dim = self.encoder.out_dim
        if not isinstance(embeddings, nn.Embedding) or embeddings.embedding_dim != dim:
            raise SelfsupError(
                "tsdae ties the decoder to the encoder's word embeddings, which must be an "
                f"embedding table as wide as the encoder's output ({dim}); this model has "
                f"{embeddings!r}"
            )
        config = self.encoder.config
        heads = cfg.decoder_heads or getattr(config, "num_attention_heads", None)
        if not heads or dim % heads:
            raise SelfsupError(
                f"tsdae's decoder needs a head count that divides the width {dim}; set "
                f"method.decoder_heads (got {heads})"
            )
        dropout = cfg.decoder_dropout
        if dropout is None:
            dropout = float(getattr(config, "hidden_dropout_prob", 0.1))
        self.decoder = SentenceDecoder(
            embeddings,
            layers=cfg.decoder_layers or int(getattr(config, "num_hidden_layers", 6)),
            heads=heads,
            feedforward=int(getattr(config, "intermediate_size", 4 * dim)),
            max_length=spec.max_length,
            dropout=dropout,
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        special = sorted(set(tokenizer.all_special_ids))
        self.register_buffer("special_ids", torch.tensor(special, dtype=torch.long), False)

    def views(self, batch: Batch) -> list[Batch]:
        """The damaged sentences: `deletion` of each one's content tokens deleted at random."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        ids, mask = word_deletion(ids, mask, self.special_ids, self.cfg.deletion, self.pad_id)
        return [{"input_ids": ids, "attention_mask": mask}]

    def reconstruction_logits(
        self, damaged: Batch, original: Batch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, targets, target mask): the decoder's next-token logits over the original
        sentence given the damaged sentence's pooled vector, with teacher forcing."""
        z = self.encoder(damaged)
        self.watch(z)
        original = drop_padding_columns(original)
        ids, mask = original["input_ids"], original["attention_mask"]
        if ids.shape[1] < 2:
            raise SelfsupError("tsdae needs sentences of at least two tokens ([CLS] [SEP])")
        logits = self.decoder(z, ids[:, :-1], mask[:, :-1])
        return logits, ids[:, 1:], mask[:, 1:]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, targets, mask = self.reconstruction_logits(views[0], batch)
        loss = token_cross_entropy(logits, targets, mask)
        kept = views[0]["attention_mask"].sum() / batch["attention_mask"].sum()
        return loss, {"token_accuracy": token_accuracy(logits, targets, mask), "kept_tokens": kept}
