"""Supervised SimCSE (Gao, Yao & Chen 2021, "SimCSE: Simple contrastive learning of sentence
embeddings", sec. 4): NLI triplets train a sentence encoder contrastively.

Each anchor (a premise) has its entailed hypothesis as the positive and its contradiction as a
hard negative; every other positive and hard negative of the (global) batch is an in-batch
negative. Pair files (anchor, positive) train the same loss without hard negatives. As in the
unsupervised method, an MLP (Linear + Tanh) sits on the pooled output during training and the
exported encoder leaves it off (the paper keeps it at test time for supervised models; the
exported encoder here is the pooled transformer, like every text encoder of selfsup).

Paper settings (BERT-base, SNLI+MNLI, 275k triplets): temperature 0.05, batch 512, lr 5e-5,
3 epochs, [CLS] pooling; `chunk_size` turns on GradCache so such batches fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.distributed import gather_with_grad
from selfsup.losses import supervised_info_nce
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.gradcache import cached_embeddings, check_chunk_size

ANCHOR = ("input_ids", "attention_mask")
POSITIVE = ("positive_input_ids", "positive_attention_mask")
NEGATIVE = ("negative_input_ids", "negative_attention_mask")


@dataclass
class SupervisedSimCSEConfig:
    temperature: float = 0.05  # the paper's, for supervised and unsupervised alike
    mlp: bool = True  # the MLP during training (dropped from the exported encoder)
    hard_negatives: bool = True  # use the triplets' contradictions when the data has them
    gather_negatives: bool = True  # under DDP, in-batch negatives come from the global batch
    chunk_size: int | None = None  # GradCache: rows embedded at once (None: the whole batch)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        check_chunk_size(self.chunk_size)


@register
class SupervisedSimCSE(Method):
    """Encoder f (transformers + pooling), MLP g; loss supervised_info_nce(g(f(a)), g(f(p)),
    g(f(n)))."""

    name = "simcse_sup"
    family = "sentences, contrastive (trains with labels)"
    paper = "Gao, Yao & Chen 2021, supervised SimCSE"
    summary = "NLI entailments are positives, contradictions hard negatives"
    views_note = (
        "none; the pairs' positives (and hard negatives) are the second view, dropout is on"
    )
    Config = SupervisedSimCSEConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 5e-5,
        "weight_decay": 0.0,
        "warmup": 0.0,
    }
    optimiser_reference = (
        "the paper's BERT-base setting, AdamW 5e-5, no weight decay, no warm-up (at batch "
        "512, not scaled with batch)"
    )
    inputs = frozenset(ANCHOR + POSITIVE + NEGATIVE)
    modalities = frozenset({"text"})
    uses_labels = True  # human labels: NLI's entailment / contradiction
    optional_inputs = frozenset(NEGATIVE)  # pair files have no hard negatives

    def __init__(self, spec: Any, cfg: SupervisedSimCSEConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        dim = self.encoder.out_dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.Tanh()) if cfg.mlp else nn.Identity()

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training embedding g(f(x)) of token ids and masks."""
        return self.mlp(self.encoder(inputs))

    def views(self, batch: Batch) -> list[Batch]:
        views = [{"input_ids": batch[ANCHOR[0]], "attention_mask": batch[ANCHOR[1]]}]
        views.append({"input_ids": batch[POSITIVE[0]], "attention_mask": batch[POSITIVE[1]]})
        if self.cfg.hard_negatives and NEGATIVE[0] in batch:
            views.append({"input_ids": batch[NEGATIVE[0]], "attention_mask": batch[NEGATIVE[1]]})
        return views

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # One pass over anchors, positives (and negatives): every row its own dropout mask.
        width = max(v["input_ids"].shape[1] for v in views)
        rows = {
            k: torch.cat([nn.functional.pad(v[k], (0, width - v[k].shape[1])) for v in views])
            for k in ("input_ids", "attention_mask")
        }
        params = [p for p in self.parameters() if p.requires_grad]
        z = cached_embeddings(self.embed, rows, params, self.cfg.chunk_size)
        parts = list(z.chunk(len(views)))
        self.watch(parts[0])
        if self.cfg.gather_negatives:
            parts = [gather_with_grad(p) for p in parts]
        negatives = parts[2] if len(parts) == 3 else None
        loss = supervised_info_nce(parts[0], parts[1], negatives, self.cfg.temperature)
        with torch.no_grad():
            a, p = (nn.functional.normalize(x.float(), dim=1) for x in parts[:2])
            figures = {"positive_cos": (a * p).sum(1).mean()}
            if negatives is not None:
                n = nn.functional.normalize(negatives.float(), dim=1)
                figures["hard_negative_cos"] = (a * n).sum(1).mean()
        return loss, figures
