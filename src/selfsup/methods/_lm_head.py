"""The language-model head shared by `mlm` and `causal_lm`: BERT's prediction head.

dense (H -> H) + GELU + LayerNorm, then a decoder to the vocabulary whose weight IS the input
word-embedding matrix of the encoder (tied, as in BERT and GPT) plus a bias of its own. It
lives in the method, so the exported encoder stays the plain transformers model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.models.text import TextEncoder


class TiedLMHead(nn.Module):
    """Token states (..., H) -> vocabulary logits (..., V), decoder tied to the encoder's word
    embeddings (layer-norm epsilon from its config)."""

    def __init__(self, encoder: TextEncoder):
        super().__init__()
        embeddings = encoder.word_embeddings()
        eps = getattr(encoder.config, "layer_norm_eps", 1e-12)  # BERT's
        vocab, hidden = embeddings.weight.shape
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))
        # a plain attribute, not a submodule: the embedding is the encoder's, saved there once
        self._embeddings = [embeddings]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.dense(hidden)))
        return F.linear(h, self._embeddings[0].weight, self.bias)
