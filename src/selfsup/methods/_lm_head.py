"""The language-model head shared by `mlm` and `causal_lm`: BERT's prediction head.

dense (H -> H) + GELU + LayerNorm, then a decoder to the vocabulary whose weight IS the input
word-embedding matrix of the encoder (tied, as in BERT and GPT) plus a bias of its own. It
lives in the method, so the exported encoder stays the plain transformers model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TiedLMHead(nn.Module):
    """Hidden states (..., H) -> vocabulary logits (..., V), decoder tied to `embeddings`."""

    def __init__(self, embeddings: nn.Embedding, eps: float = 1e-12):
        super().__init__()
        vocab, hidden = embeddings.weight.shape
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))
        # a plain attribute, not a submodule: the embedding is the encoder's, saved there once
        self._embeddings = [embeddings]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.dense(hidden)))
        return F.linear(h, self._embeddings[0].weight, self.bias)
