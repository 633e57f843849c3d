"""Masked language modelling (Devlin et al. 2019, "BERT"): predict the tokens hidden in a
sentence from the rest of it, bidirectionally.

Each step corrupts the batch's token ids on the device (`augment/token_masking.bert_masking`):
15 % of the non-special, non-padding tokens are chosen (or, with `whole_word`, 15 % of the
words with all their sub-tokens); a chosen token becomes [MASK] (80 %), a random non-special
token (10 %) or stays (10 %). The encoder reads the corrupted sentence; BERT's prediction head
(dense + GELU + LayerNorm + a decoder tied to the input word embeddings, `_lm_head.py`) scores
the vocabulary at the chosen positions only, and the loss is their cross-entropy
(`losses.masked_token_loss`). The head lives here, not in the exported encoder.

Works from random weights (`--set model.pretrained=false`: the architecture of `--model`'s
config) and from a pretrained model (continued pre-training on in-domain sentences). A
pretrained folder's own MLM head is not read: the head starts from scratch (a sentence-embedding
folder such as all-MiniLM-L6-v2 has none). Logged: `masked_acc`, the accuracy of the top
prediction at the chosen positions.

Paper settings (BERT-base): sequences of 512 tokens, batch 256, Adam lr 1e-4 with 10k warm-up
steps and linear decay, weight decay 0.01, 1M steps. Under torchrun each rank averages over its
own chosen tokens (as BERT's and transformers' data-parallel training do); nothing is gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.augment.token_masking import bert_masking, word_starts_from_vocab
from selfsup.errors import SelfsupError
from selfsup.losses import masked_token_loss
from selfsup.methods._lm_head import TiedLMHead
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.text import masked_mean


@dataclass
class MLMConfig:
    ratio: float = 0.15  # fraction of tokens (or words) chosen as targets
    mask_prob: float = 0.8  # of the chosen: replaced by [MASK]
    random_prob: float = 0.1  # of the chosen: replaced by a random token (the rest: unchanged)
    whole_word: bool = False  # choose whole words (all sub-tokens together)

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ValueError("ratio must be in (0, 1)")
        if min(self.mask_prob, self.random_prob) < 0 or self.mask_prob + self.random_prob > 1:
            raise ValueError("mask_prob and random_prob must be >= 0 and sum to at most 1")


def special_token_table(tokenizer: Any, vocab_size: int) -> torch.Tensor:
    """(V,) bool: True at the tokenizer's special ids ([CLS], [SEP], [PAD], [MASK], ...)."""
    table = torch.zeros(vocab_size, dtype=torch.bool)
    table[[i for i in tokenizer.all_special_ids if i < vocab_size]] = True
    return table


@register
class MLM(Method):
    """Encoder f (a transformers model), head g tied to f's embeddings; CE(g(f(mask(x))), x)."""

    name = "mlm"
    family = "sentences, self-prediction"
    paper = "Devlin et al. 2019, BERT"
    summary = "predict masked tokens from the rest of the sentence"
    views_note = (
        "none of the data's; the method hides {cfg.ratio:.0%} of the tokens (of these, "
        "[MASK] {cfg.mask_prob:.0%}, a random token {cfg.random_prob:.0%}, the rest kept) "
        "and predicts them"
    )
    Config = MLMConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1e-4,
        "weight_decay": 0.01,
        "warmup": 0.01,
    }
    optimiser_reference = "BERT's, Adam 1e-4 at batch 256, wd 0.01, 10k warm-up steps of 1M"
    inputs = frozenset({"input_ids", "attention_mask"})
    modalities = frozenset({"text"})

    def __init__(self, spec: Any, cfg: MLMConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        tokenizer = self.encoder.tokenizer
        if tokenizer.mask_token_id is None:
            raise SelfsupError(
                f"method 'mlm' needs a tokenizer with a mask token; the one of {spec.model} "
                "has none (a GPT-style tokenizer: use --method causal_lm)"
            )
        self.head = TiedLMHead(self.encoder)
        vocab = self.encoder.word_embeddings().num_embeddings
        special = special_token_table(tokenizer, vocab)
        usable = min(len(tokenizer), vocab)
        # derived from the tokenizer, not state: kept out of checkpoints
        self.register_buffer("special", special, persistent=False)
        self.register_buffer(
            "random_ids", torch.arange(usable)[~special[:usable]], persistent=False
        )
        if cfg.whole_word:
            starts = word_starts_from_vocab(tokenizer.convert_ids_to_tokens(list(range(usable))))
            table = torch.ones(vocab, dtype=torch.bool)
            table[:usable] = starts
            self.register_buffer("word_start", table, persistent=False)
        else:
            self.word_start = None

    def corrupt(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted ids, chosen positions) of a batch's token ids, drawn on its device."""
        ids, attention = batch["input_ids"], batch["attention_mask"]
        special = self.special[ids] | ~attention.bool()
        return bert_masking(
            ids,
            special,
            mask_id=self.encoder.tokenizer.mask_token_id,
            random_ids=self.random_ids,
            generator=generator,
            ratio=self.cfg.ratio,
            mask_prob=self.cfg.mask_prob,
            random_prob=self.cfg.random_prob,
            word_start=None if self.word_start is None else self.word_start[ids],
        )

    def views(self, batch: Batch) -> list[Batch]:
        ids, chosen = self.corrupt(batch)
        return [{"input_ids": ids, "attention_mask": batch["attention_mask"], "chosen": chosen}]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self.encoder.forward_features(views[0])  # all-padding columns dropped
        hidden, mask = features["token_states"], features["attention_mask"]
        width = mask.shape[1]
        chosen = views[0]["chosen"][:, :width]
        self.watch(masked_mean(hidden, mask))
        logits = self.head(hidden[chosen])  # only the chosen positions reach the vocabulary
        targets = batch["input_ids"][:, :width][chosen]
        loss = masked_token_loss(logits, targets)
        hits = (logits.detach().argmax(dim=-1) == targets).float().sum()
        accuracy = hits / max(1, targets.numel())
        return loss, {"masked_acc": accuracy, "masked_fraction": chosen.sum() / mask.sum()}
