"""Sentences: token ids held in memory, a transformers encoder, dropout as the augmentation of
SimCSE, STS evaluation, and TF-IDF cosine as the raw-input baseline to beat."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfsup.config import Config
from selfsup.errors import SelfsupError
from selfsup.modalities.base import Batch, Modality

TEXT_FIELDS = ("input_ids", "attention_mask")
# Supervised pairs and NLI triplets (nli:, pairs: sources): the anchor is "input_ids", its
# positive and hard negative these (supervised SimCSE).
PAIR_FIELDS = (
    "positive_input_ids",
    "positive_attention_mask",
    "negative_input_ids",
    "negative_attention_mask",
)
TFIDF_FIT_LINES = 100_000  # TF-IDF baseline on a streamed file: fitted on this many lines


class TextModality(Modality):
    """Text files, CSV/TSV columns, STS pair files, WordNet glosses."""

    name = "text"
    fields = frozenset(TEXT_FIELDS + PAIR_FIELDS)
    default_protocols = ("sts", "retrieval", "geometry")
    online_protocols = ("sts",)
    initial_row = "untrained"
    raw_row = "tfidf"
    row_titles: ClassVar[dict[str, str]] = {
        "selfsup": "learned encoder",
        "untrained": "the model before this run's training (as loaded, or random init)",
        "tfidf": "TF-IDF cosine (fitted on the bank sentences)",
    }

    def encoder_spec(self, cfg: Config, train: Any) -> Any:
        from selfsup.models.text import TextEncoderSpec

        if cfg.model.text_tower != "transformers":
            raise SelfsupError(
                f"model.text_tower={cfg.model.text_tower} is CLIP's text tower for image-text "
                "pairs; a text run trains a transformers model: drop model.text_tower and pass "
                "--model PATH"
            )
        if not cfg.model.path:
            raise SelfsupError(
                "a text run needs a transformers model folder: pass --model PATH (its config and "
                "tokenizer; --set model.pretrained=false starts from random weights)"
            )
        return TextEncoderSpec(
            model=cfg.model.path,
            pretrained=cfg.model.pretrained,
            pooling=cfg.model.pooling,
            max_length=cfg.model.max_length,
        )

    def augment(self, cfg: Config, spec: Any) -> Any:
        """Token augmentations named by `method.augment` (augment/text.py), or None: dropout
        alone (SimCSE's default)."""
        from selfsup.augment.text import build_token_augment, parse_token_recipe

        if not parse_token_recipe(cfg.method.augment or "dropout"):
            return None
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(spec.model, local_files_only=True)
        except (OSError, ValueError):
            # The model folder is gone (evaluating an exported run elsewhere): the augmentation
            # only feeds the geometry protocol's alignment views then, which are skipped.
            return None
        return build_token_augment(cfg.method.augment, tokenizer)

    def describe_augment(self, augment: Any) -> str:
        if augment is not None:
            return f"augmentation: {augment!r} on the tokens, then the encoder's dropout"
        return "augmentation: none on the tokens (the method's dropout makes the views)"

    def tensors(self, data: Any, encoder: Any) -> Batch:
        from selfsup.data.lines import LineStore, Tokenized

        if isinstance(data.sentences, LineStore):  # a streamed file: tokenised batch by batch
            return Tokenized(data.sentences, encoder.tokenize_all).fields()  # type: ignore[return-value]
        fields = encoder.tokenize_all(data.sentences)
        for prefix in ("positive", "negative"):
            column = getattr(data, prefix + "s", None)
            if column is not None:
                tokens = encoder.tokenize_all(column)
                fields |= {f"{prefix}_{k}": v for k, v in tokens.items()}
        return fields

    def encoder_input(self, batch: Batch) -> Batch:
        return {name: batch[name] for name in TEXT_FIELDS}

    def raw_features(
        self, bank: Any, queries: Any, with_bank: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        from selfsup.data.lines import LineStore
        from selfsup.evaluate.sts import tfidf_features

        fit_on = bank.sentences
        if isinstance(fit_on, LineStore) and len(fit_on) > TFIDF_FIT_LINES and not with_bank:
            # A streamed corpus: fit the vocabulary and IDF on a seeded sample of its lines.
            gen = torch.Generator().manual_seed(0)
            fit_on = fit_on.take(torch.randperm(len(fit_on), generator=gen)[:TFIDF_FIT_LINES])
        return tfidf_features(fit_on, queries.sentences, with_bank=with_bank)

    def sample_text(self, data: Any, index: int) -> str:
        return data.sentences[index]

    def report_sections(
        self, encoder: Any, bank: Any, queries: Any, augment: Any, device: str
    ) -> list[tuple[str, str, str]]:
        from selfsup.modalities.text_report import neighbours_section

        section = neighbours_section(self, encoder, bank, queries, device)
        return [("neighbours", "Nearest sentences", section)]
