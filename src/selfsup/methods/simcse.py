"""Unsupervised SimCSE (Gao et al., 2021): a sentence and itself under two dropout masks are a
positive pair; the other sentences of the batch are negatives.

The views are the same token ids twice: the encoder's dropout (on in training) is the only
augmentation. During training an MLP (Linear + Tanh, like BERT's pooler) sits on the pooled
output, as in the paper's unsupervised setting; the exported encoder leaves it off. A sentence
that occurs twice in a batch would be its own negative: such pairs are masked out of the
denominator by hashing the token rows, across ranks too, so that no Python loop runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.distributed import gather_with_grad, gather_without_grad
from selfsup.losses import info_nce
from selfsup.methods._token_hash import row_hashes
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.gradcache import cached_embeddings, check_chunk_size


@dataclass
class SimCSEConfig:
    temperature: float = 0.05
    mlp: bool = True  # the pooler MLP during training (dropped from the exported encoder)
    gather_negatives: bool = True  # under DDP, negatives come from the global batch
    mask_duplicates: bool = True  # a repeated sentence is not its own negative
    chunk_size: int | None = None  # GradCache: rows embedded at once (None: the whole batch)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        check_chunk_size(self.chunk_size)


@register
class SimCSE(Method):
    """Encoder f (a transformers model + pooling), MLP g; loss info_nce(g(f(x)), g(f'(x)))."""

    name = "simcse"
    family = "sentences, contrastive"
    paper = "Gao, Yao & Chen 2021, unsupervised SimCSE"
    summary = "a sentence under two dropout masks is a positive pair"
    Config = SimCSEConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 3e-5,
        "weight_decay": 0.0,
        "warmup": 0.0,
    }
    optimiser_reference = (
        "the paper's BERT-base setting, AdamW 3e-5, no weight decay, no warm-up (tuned at "
        "batch 64; text papers do not scale lr with batch, so 3e-5 per 256 here)"
    )
    inputs = frozenset({"input_ids", "attention_mask"})
    modalities = frozenset({"text"})

    def __init__(self, spec: Any, cfg: SimCSEConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        dim = self.encoder.out_dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.Tanh()) if cfg.mlp else nn.Identity()

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training embedding g(f(x)) of token ids and masks."""
        return self.mlp(self.encoder(inputs))

    def views(self, batch: Batch) -> list[Batch]:
        x = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self.augment is not None:  # token augmentations (method.augment), then dropout
            return [self.augment(x, view=0), self.augment(x, view=1)]
        return [x, x]  # the same sentences twice: dropout makes the two views

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # One forward of the doubled batch: each row gets its own dropout mask.
        both = {k: torch.cat([views[0][k], views[1][k]]) for k in views[0]}
        params = [p for p in self.parameters() if p.requires_grad]
        z = cached_embeddings(self.embed, both, params, self.cfg.chunk_size)  # GradCache
        z1, z2 = z.chunk(2)
        self.watch(z1)
        exclude = None
        hashes = row_hashes(batch["input_ids"], batch["attention_mask"])
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
            hashes = gather_without_grad(hashes)
        if self.cfg.mask_duplicates:
            exclude = hashes[:, None] == hashes[None, :]
            exclude.fill_diagonal_(False)
        loss = info_nce(z1, z2, self.cfg.temperature, exclude)
        figures = {"duplicates": exclude.sum() / 2} if exclude is not None else {}
        return loss, figures
