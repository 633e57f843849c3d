"""Causal language modelling: predict each next token of a sentence from the tokens before it
(Radford et al. 2018, "Improving language understanding by generative pre-training", eq. 1),
the text form of autoregressive self-prediction.

The model is the architecture of `--model` (its config and tokenizer) built as a decoder:
`is_decoder=True`, so each token attends only to itself and the tokens on its left (the
encoder spec's `causal` flag; the exported encoder keeps it, so `selfsup.load` rebuilds the
same causal model). Why this rather than a GPT-2 config: the tokenizer, vocabulary, width and
depth stay those of the folder the user names, the encoder class, export and STS evaluation are
the text encoder's own, and the same folder serves `mlm`, `simcse` and this method, so the
three compare on one architecture. Only BERT-family models honour `is_decoder`; the method
checks at start that a changed future token leaves earlier hidden states alone, and refuses a
model that does not.

Head: BERT's prediction head tied to the input embeddings (`_lm_head.py`), in the method.
Loss: cross-entropy of token t+1 from position t over real targets (`losses.next_token_loss`);
padding targets are ignored, so the final [SEP] is predicted and nothing is predicted from it.
Logged: `next_token_acc`.

Features for evaluation: the encoder's mean pooling over real tokens (the default `mean`).
Why not the last token: the last real token is [SEP], whose top-layer state gets no training
signal (it predicts only padding), and [CLS] pooling would read position 0, which sees nothing
but itself under the causal mask: `cls` pooling is refused. The mean over positions is also
what the text encoder already does, so evaluation and export need nothing new.

Paper settings (GPT): 12 layers, 768 wide, contiguous 512-token sequences, batch 64, Adam
lr 2.5e-4 with 2000 warm-up steps and cosine decay, 100 epochs of BooksCorpus. Here sentences are
modelled one at a time (padded rows), which is what the sentence sources provide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from selfsup.errors import SelfsupError
from selfsup.losses import next_token_loss
from selfsup.methods._lm_head import TiedLMHead
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.text import TextEncoder, masked_mean


@dataclass
class CausalLMConfig:
    """No parameters of its own: the model, its size and the optimizer come from the run."""


def check_causal(encoder: TextEncoder) -> None:
    """Raise unless changing the last token of a row leaves the earlier token states unchanged."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            device = next(encoder.parameters()).device
            rows = [[1, 2, 3, 4], [1, 2, 3, 5 % encoder.config.vocab_size]]
            ids = torch.tensor(rows, device=device)
            batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            out = encoder.forward_features(batch)["token_states"]
    finally:
        encoder.train(was_training)
    if not torch.allclose(out[0, :3], out[1, :3], atol=1e-5):
        raise SelfsupError(
            f"method 'causal_lm' needs a model that can be built with a causal attention mask "
            f"(is_decoder=True, as BERT-family models); {encoder.config.model_type} ignores it"
        )


@register
class CausalLM(Method):
    """Causal encoder f, head g tied to f's embeddings; CE(g(f(x)_t), x_{t+1})."""

    name = "causal_lm"
    family = "sentences, self-prediction"
    paper = "Radford et al. 2018, GPT"
    summary = "predict each next token from the tokens before it"
    views_note = "none; the method predicts each next token from the tokens before it"
    Config = CausalLMConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "adamw", "lr": 2.5e-4, "weight_decay": 0.01}
    optimiser_reference = "GPT's, Adam 2.5e-4, wd 0.01 (at batch 64, not scaled with batch)"
    inputs = frozenset({"input_ids", "attention_mask"})
    modalities = frozenset({"text"})

    def __init__(self, spec: Any, cfg: CausalLMConfig, augment: Any):
        if getattr(spec, "pooling", "mean") == "cls":
            raise SelfsupError(
                "method 'causal_lm' cannot pool with cls: under a causal mask the first token "
                "sees only itself; use --set model.pooling=mean (the default)"
            )
        super().__init__(replace(spec, causal=True), cfg, augment)
        check_causal(self.encoder)
        self.head = TiedLMHead(self.encoder)

    def logits(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits (B, L, V) at every position and the mask (B, L), all-padding
        columns dropped; the mean token state is watched."""
        features = self.encoder.forward_features(batch)
        hidden, mask = features["token_states"], features["attention_mask"]
        self.watch(masked_mean(hidden, mask))
        return self.head(hidden), mask

    def views(self, batch: Batch) -> list[Batch]:
        return [{"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, mask = self.logits(views[0])
        ids = views[0]["input_ids"][:, : mask.shape[1]]
        loss = next_token_loss(logits, ids, mask)
        target = mask[:, 1:].bool()
        hits = (logits[:, :-1].detach().argmax(dim=-1) == ids[:, 1:]) & target
        return loss, {"next_token_acc": hits.sum() / target.sum().clamp_min(1)}
