"""Sentences: token ids held in memory, a transformers encoder, dropout as the augmentation of
SimCSE, STS evaluation, and TF-IDF cosine as the raw-input baseline to beat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from selfsup.augment.text import build_token_augment, parse_token_recipe
from selfsup.config import Config
from selfsup.data.lines import LazyLines, Tokenized
from selfsup.errors import SelfsupError
from selfsup.methods import get_method
from selfsup.modalities.base import Batch, Modality
from selfsup.modalities.raw import tfidf_features
from selfsup.modalities.sections import Section
from selfsup.modalities.text_report import neighbours_section
from selfsup.models.text import TextEncoderSpec, folder_settings

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
COUNT_SAMPLE = 10_000  # a streamed file's truncated sentences are counted on a sample this big
# What the evaluation data must have for a figure to say whether the encoder got better
QUALITY_NEEDS = frozenset({"pairs", "retrieval", "label"})
# Protocols that bring their own human scores (word vectors), whatever the evaluation data
SELF_SCORED = frozenset({"word_similarity", "analogy"})
NO_QUALITY = (
    "nothing here measures this encoder's quality: the evaluation data ({where}) has no scored "
    "sentence pairs, (query, document) pairs or labels. Alignment and uniformity describe how "
    "the embeddings spread, not whether similar sentences get similar vectors: a better "
    "uniformity is not a better model. Give an evaluation set with --eval-data SOURCE "
    "(sts:DIR, e.g. STS-B; retrieval:FILE)"
)
SENTENCE_TUNED = (
    "{model} is a sentence-transformers folder, already trained for sentence similarity: "
    "an unsupervised objective on a small corpus seldom raises such a model much and can "
    "lower it ({measured}). Judge the run on a labelled evaluation set (--eval-data), beside "
    "the 'as_loaded' row"
)
# docs/text.md, "Adapting a sentence-tuned model": the commands and the per-genre figures
MEASURED = (
    "STS-B test Spearman of all-MiniLM-L6-v2 as loaded 0.8203; after unsupervised SimCSE, "
    "1 epoch of 10,496 STS-B train sentences 0.8214 (captions 0.9217 -> 0.8834), 80 steps "
    "of WordNet 0.8249; a user's held-out document-similarity set fell 0.656 -> 0.590"
)


class TextModality(Modality):
    """Text files, CSV/TSV columns, STS pair files, WordNet glosses."""

    name = "text"
    fields = frozenset(TEXT_FIELDS + PAIR_FIELDS)
    default_protocols = ("sts", "retrieval", "geometry")
    online_protocols = ("sts",)
    initial_row = "as_loaded"
    raw_row = "tfidf"
    row_titles: ClassVar[dict[str, str]] = {
        "selfsup": "learned encoder",
        "as_loaded": "the model as loaded, before this run's training (random weights with "
        "model.pretrained=false)",
        "untrained": "the model as loaded, before this run's training",  # runs before the rename
        "tfidf": "TF-IDF cosine (fitted on the bank sentences)",
    }

    def encoder_spec(self, cfg: Config, train: Any) -> Any:
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
        folder = folder_settings(cfg.model.path)  # what the folder says, for unset keys
        return TextEncoderSpec(
            model=cfg.model.path,
            pretrained=cfg.model.pretrained,
            pooling=cfg.model.pooling or folder.pooling or "mean",
            max_length=cfg.model.max_length or folder.max_length,
            normalize=folder.normalize,
        )

    def augment(self, cfg: Config, spec: Any) -> Any:
        """Token augmentations named by `method.augment` (augment/text.py), or None: dropout
        alone (SimCSE's default)."""
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
        if isinstance(data.sentences, LazyLines):  # read on demand: tokenised batch by batch
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
        fit_on = bank.sentences
        if isinstance(fit_on, LazyLines) and len(fit_on) > TFIDF_FIT_LINES and not with_bank:
            # A streamed corpus: fit the vocabulary and IDF on a seeded sample of its lines.
            gen = torch.Generator().manual_seed(0)
            fit_on = fit_on.take(torch.randperm(len(fit_on), generator=gen)[:TFIDF_FIT_LINES])
        return tfidf_features(fit_on, queries.sentences, with_bank=with_bank)

    def startup_notes(self, cfg: Config, encoder: Any, train: Any, eval_data: Any) -> list[str]:
        """The text model as the run uses it (pooling, max_length and where it came from), how
        many training and evaluation sentences max_length cuts, and, before any training, what
        cannot be measured and what a sentence-tuned model risks."""
        if hasattr(encoder, "describe"):  # a kind that says itself (word vectors)
            protocols = cfg.eval.protocols
            if protocols is None:  # judged by its method's own (word similarity, analogies)
                protocols = get_method(cfg.method.name).protocols
            caveat = self.evaluation_caveat(eval_data, protocols)
            return [encoder.describe(), *filter(None, [caveat])]
        spec = encoder.spec
        folder = folder_settings(spec.model)
        source = "model.max_length" if cfg.model.max_length else folder.max_length_from
        lines = [
            f"text model: {spec.model} ({spec.pooling} pooling"
            + (", unit-length embeddings" if spec.normalize else "")
            + f"); max_length {spec.max_length} tokens ({source})"
        ]
        counts = [
            _truncated(encoder, data.sentences, what)
            for data, what in ((train, "training"), (eval_data.queries, "evaluation"))
            if data is not None and getattr(data, "sentences", None) is not None
        ]
        if counts:
            lines.append(f"max_length {spec.max_length} cuts " + " and ".join(counts))
        caveat = self.evaluation_caveat(eval_data)
        if caveat:
            lines.append(caveat)
        unsupervised = not get_method(cfg.method.name).uses_labels
        if folder.sentence_tuned and spec.pretrained and unsupervised:
            lines.append(SENTENCE_TUNED.format(model=spec.model, measured=MEASURED))
        return lines

    def evaluation_caveat(self, eval_data: Any, protocols: Sequence[str] = ()) -> str | None:
        if QUALITY_NEEDS & eval_data.available() or SELF_SCORED & set(protocols):
            return None
        return NO_QUALITY.format(where=eval_data.queries_from)

    def report_sections(
        self, encoder: Any, bank: Any, queries: Any, augment: Any, device: str
    ) -> list[Section]:
        section = neighbours_section(self, encoder, bank, queries, device)
        return [("neighbours", "Nearest sentences", section)]


def _truncated(encoder: Any, sentences: Any, what: str) -> str:
    """ "N of M training sentences" longer than max_length (a streamed file: in a sample)."""
    if isinstance(sentences, LazyLines) and len(sentences) > COUNT_SAMPLE:
        gen = torch.Generator().manual_seed(0)
        sample = sentences.take(torch.randperm(len(sentences), generator=gen)[:COUNT_SAMPLE])
        cut = encoder.count_truncated(sample)
        return f"{cut:,} of a {COUNT_SAMPLE:,}-line sample of the {what} sentences"
    return f"{encoder.count_truncated(sentences):,} of {len(sentences):,} {what} sentences"
