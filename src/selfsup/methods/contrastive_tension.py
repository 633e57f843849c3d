"""Contrastive tension (Carlsson, Gyllensten, Gogoulou, Hellqvist & Sahlgren 2021, "Semantic
re-tuning with contrastive tension", ICLR): two independently updated copies of a pretrained
encoder; a sentence fed to both is a positive pair, two different sentences a negative one,
and a binary logistic loss on the dot product of their pooled outputs pulls the two models'
views of a sentence together and pushes different sentences apart. It counters the
"task bias" of a pretrained model's last layers without labels or augmentation.

Which model is kept: the paper (and sentence-transformers' reference loss) evaluates the model
that encodes the *second* sentence of each pair, its "model 2". Here `self.encoder`, the
exported one, plays that role; `self.partner` is the other copy (the paper's model 1), trained
alongside and dropped at export.

Paper settings (BERT-base, Wikipedia sentences): mean pooling, K = 7 negatives per positive,
batch 16, Adam with lr 1e-5, about 50k steps; see `contrastive_tension` in losses/text.py for
how the 1 : K ratio is kept here with every in-batch pair used.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.distributed import gather_with_grad
from selfsup.losses import contrastive_tension
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.gradcache import cached_embeddings, check_chunk_size


@dataclass
class ContrastiveTensionConfig:
    negatives_per_positive: float = 7.0  # K: negatives weigh K times the positive (paper: 7)
    gather_negatives: bool = True  # under DDP, negative pairs span the global batch
    chunk_size: int | None = None  # GradCache: rows embedded at once (None: the whole batch)

    def __post_init__(self) -> None:
        if self.negatives_per_positive <= 0:
            raise ValueError("negatives_per_positive must be positive")
        check_chunk_size(self.chunk_size)


@register
class ContrastiveTension(Method):
    """Models f (exported; the paper's model 2) and f' (a copy at start, trained apart);
    loss contrastive_tension(f'(x), f(x))."""

    name = "contrastive_tension"
    family = "sentences, contrastive"
    paper = "Carlsson et al. 2021, contrastive tension"
    summary = "two copies of a model agree on a sentence, disagree on others"
    views_note = (
        "none; two copies of the model encode the same sentence (a positive) or two "
        "different ones (negatives)"
    )
    Config = ContrastiveTensionConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "adamw", "lr": 1e-5, "weight_decay": 0.01}
    optimiser_reference = (
        "sentence-transformers' CT example, AdamW 1e-5 (at batch 16, not scaled with batch)"
    )
    inputs = frozenset({"input_ids", "attention_mask"})
    modalities = frozenset({"text"})

    def __init__(self, spec: Any, cfg: ContrastiveTensionConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.partner = copy.deepcopy(self.encoder)  # identical start, independent updates

    def views(self, batch: Batch) -> list[Batch]:
        x = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        return [x]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Every in-batch pair enters the loss, so a batch larger than memory needs GradCache
        # (each tower embedded chunk by chunk, then replayed with its dropout masks).
        chunk = self.cfg.chunk_size
        first = cached_embeddings(self.partner, views[0], list(self.partner.parameters()), chunk)
        second = cached_embeddings(self.encoder, views[0], list(self.encoder.parameters()), chunk)
        self.watch(second)
        if self.cfg.gather_negatives:
            first, second = gather_with_grad(first), gather_with_grad(second)
        loss = contrastive_tension(first, second, self.cfg.negatives_per_positive)
        with torch.no_grad():
            dots = first.float() @ second.float().T
            eye = torch.eye(len(dots), dtype=torch.bool, device=dots.device)
            figures = {"positive_dot": dots[eye].mean(), "negative_dot": dots[~eye].mean()}
        return loss, figures
