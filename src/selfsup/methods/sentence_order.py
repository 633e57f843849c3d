"""Sentence order: learn from the order of a document's sentences (`docs:FILE` pairs).

`mode=sop` (default): ALBERT's sentence-order prediction (Lan et al. 2020, sec. 3.2): a pair of
consecutive sentences (A, B) of one document is shown in order or, with probability 0.5,
swapped (B, A), and a two-way classifier on the pair's embedding says which. ALBERT draws its
positives and negatives from the same two segments (google-research/albert,
create_pretraining_data.py: `is_random_next` swaps tokens_a and tokens_b), so topic gives no
clue: only order and coherence do. Its head (HF AlbertSOPHead) is dropout + Linear(hidden, 2)
on the pooled [CLS] of the joint sequence "[CLS] A [SEP] B [SEP]"; here the run's sentence
encoder embeds A and B apart (it is a sentence encoder, and the exported one stays one), and
the pair's embedding is [u, v], read by Linear(2d, d) + tanh (BERT's pooler) + Linear(d, 2).

`mode=quick-thoughts`: Quick-Thoughts (Logeswaran & Lee 2018; lajanugen/S2V, s2v_model.py):
two encoders f and g; a sentence's context (here its next or previous sentence) is picked
among the batch's sentences by the score f(s) . g(s'), a softmax over the candidates. The
candidates span the global batch under DDP, as SimCSE's negatives; a candidate with the text
of the sentence itself or of its context (the same sentence in two pairs) is left out, by the
rows' token hashes. The exported encoder is f (the paper concatenates f and g downstream).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.distributed import gather_with_grad, gather_without_grad
from selfsup.errors import SelfsupError
from selfsup.losses import quick_thoughts, quick_thoughts_accuracy, sentence_order_loss
from selfsup.methods._token_hash import row_hashes
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register

MODES = ("sop", "quick-thoughts")
PAIR = ("positive_input_ids", "positive_attention_mask")
HEAD_LR_SCALE = 20.0  # the new classifier head learns at 20x the encoder's rate


@dataclass
class SentenceOrderConfig:
    mode: str = "sop"  # sop (ALBERT) | quick-thoughts (Logeswaran & Lee)
    swap_probability: float = 0.5  # sop: pairs shown swapped (ALBERT: 0.5)
    temperature: float = 1.0  # quick-thoughts: scores f.g / temperature (S2V: raw dots, 1)
    shared: bool = False  # quick-thoughts: f and g one network (the paper: two)
    gather_negatives: bool = True  # quick-thoughts: candidates from the global batch under DDP

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0 < self.swap_probability < 1:
            raise ValueError("swap_probability must be between 0 and 1 (exclusive)")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")


def _width(x: torch.Tensor, width: int) -> torch.Tensor:
    """Token rows right-padded with zeros (id 0, mask 0) to `width` columns."""
    return nn.functional.pad(x, (0, width - x.shape[1]))


def pair_fields(batch: Batch) -> tuple[Batch, Batch]:
    """The first and second sentences of each pair, padded to one width."""
    if PAIR[0] not in batch:
        raise SelfsupError(
            "sentence_order trains on pairs of consecutive sentences: give documents as "
            "--data docs:FILE (one document a line, or paragraphs separated by blank lines)"
        )
    width = max(batch["input_ids"].shape[1], batch[PAIR[0]].shape[1])
    first = {k: _width(batch[k], width) for k in ("input_ids", "attention_mask")}
    second = {k: _width(batch[f"positive_{k}"], width) for k in ("input_ids", "attention_mask")}
    return first, second


@register
class SentenceOrder(Method):
    """sop: head([f(A), f(B)]) says in order or swapped; quick-thoughts: f(A) . g(B) picks B."""

    name = "sentence_order"
    family = "sentences, contrastive"  # the data's own order (issue 27); SOP is a pretext task
    paper = "Lan et al. 2020 (ALBERT sentence-order prediction); Logeswaran & Lee 2018"
    summary = "consecutive sentences: in order or swapped (or the next among the batch)"
    Config = SentenceOrderConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 5e-5,
        "weight_decay": 0.01,
        "warmup": 0.1,
    }
    optimiser_reference = (
        "BERT/ALBERT-style fine-tuning of a pretrained encoder: AdamW 5e-5 per 256, decay 0.01, "
        "10 % warm-up; the new head at 20x (ALBERT pretrains with LAMB "
        "at batch 4096, Quick-Thoughts Adam 5e-4 on RNNs from scratch)"
    )
    inputs = frozenset({"input_ids", "attention_mask", *PAIR})
    optional_inputs = frozenset(PAIR)  # so STS evaluation data passes; a step refuses without
    modalities = frozenset({"text"})
    views_note = (
        "none on the tokens: pairs of consecutive sentences of one document (mode {cfg.mode}: "
        "sop swaps a pair with probability {cfg.swap_probability}, quick-thoughts picks a "
        "sentence's neighbour among the batch)"
    )

    def __init__(self, spec: Any, cfg: SentenceOrderConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        dim = self.encoder.out_dim
        if cfg.mode == "sop":
            self.head = nn.Sequential(nn.Linear(2 * dim, dim), nn.Tanh(), nn.Linear(dim, 2))
        elif not cfg.shared:
            self.partner = copy.deepcopy(self.encoder)  # g: same start, trained apart

    def keys_encoder(self) -> nn.Module:
        """g of Quick-Thoughts (f itself when shared)."""
        return self.encoder if self.cfg.shared else self.partner

    def param_groups(self) -> list[dict[str, Any]]:
        if self.cfg.mode != "sop":
            return super().param_groups()
        return [
            {"params": [p for p in self.encoder.parameters() if p.requires_grad]},
            {"params": list(self.head.parameters()), "lr_scale": HEAD_LR_SCALE},
        ]

    def views(self, batch: Batch) -> list[Batch]:
        first, second = pair_fields(batch)
        if self.cfg.mode != "sop":
            return [first, second]
        n, device = len(first["input_ids"]), first["input_ids"].device
        swapped = torch.rand(n, device=device) < self.cfg.swap_probability
        where = swapped[:, None]
        a = {k: torch.where(where, second[k], first[k]) for k in first}
        b = {k: torch.where(where, first[k], second[k]) for k in first}
        return [a, b, {"swapped": swapped}]

    def order_logits(self, a: Batch, b: Batch) -> torch.Tensor:
        """(N, 2) logits of 'in order' and 'swapped' for the pairs (a[i], b[i])."""
        both = self.encoder({k: torch.cat([a[k], b[k]]) for k in a})
        u, v = both.chunk(2)
        self.watch(u)
        return self.head(torch.cat([u, v], dim=1))

    def pool(self, first: Batch, second: Batch) -> tuple[torch.Tensor, torch.Tensor, Batch]:
        """f and g of the 2N sentences [firsts; seconds], and the pool's token rows."""
        rows = {k: torch.cat([first[k], second[k]]) for k in first}
        queries = self.encoder(rows)
        keys = self.keys_encoder()(rows)
        return queries, keys, rows

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.cfg.mode == "sop":
            a, b, extra = views
            loss, accuracy = sentence_order_loss(self.order_logits(a, b), extra["swapped"])
            return loss, {"sop_accuracy": accuracy}
        queries, keys, rows = self.pool(views[0], views[1])
        self.watch(queries)
        hashes = row_hashes(rows["input_ids"], rows["attention_mask"])
        n = len(queries) // 2
        if self.cfg.gather_negatives:  # keep [firsts; seconds] of the global batch in order
            q1, q2 = gather_with_grad(queries[:n]), gather_with_grad(queries[n:])
            k1, k2 = gather_with_grad(keys[:n]), gather_with_grad(keys[n:])
            h1, h2 = gather_without_grad(hashes[:n]), gather_without_grad(hashes[n:])
            queries, keys = torch.cat([q1, q2]), torch.cat([k1, k2])
            hashes = torch.cat([h1, h2])
        exclude = context_duplicates(hashes)
        loss = quick_thoughts(queries, keys, self.cfg.temperature, exclude)
        with torch.no_grad():
            accuracy = quick_thoughts_accuracy(queries, keys, exclude).mean()
        return loss, {"context_accuracy": accuracy}

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        """sop: per held-out pair, the accuracy over its two orders (in order and swapped: no
        draw, so every evaluation scores the same task); quick-thoughts: per pair, the mean
        over its two sentences of picking the context among the evaluation batch's (256 pairs).
        Nothing for data without pairs (STS evaluation sets)."""
        if PAIR[0] not in batch:
            return {}
        first, second = pair_fields(batch)
        if self.cfg.mode == "sop":
            forward = self.order_logits(first, second).argmax(1) == 0
            backward = self.order_logits(second, first).argmax(1) == 1
            return {"sop_accuracy": (forward.float() + backward.float()) / 2}
        queries, keys, rows = self.pool(first, second)
        hits = quick_thoughts_accuracy(queries, keys, context_duplicates(row_hashes(**rows)))
        n = len(hits) // 2
        return {"context_accuracy": (hits[:n] + hits[n:]) / 2}


def context_duplicates(hashes: torch.Tensor) -> torch.Tensor:
    """(2N, 2N) True where candidate j repeats the text of row i or of its context p(i) (but
    is not p(i)): the same sentence in two pairs of one batch is no negative."""
    m = len(hashes)
    idx = torch.arange(m, device=hashes.device)
    target = (idx + m // 2) % m
    same = (hashes[None, :] == hashes[:, None]) | (hashes[None, :] == hashes[target][:, None])
    return same & (idx[None, :] != target[:, None])
