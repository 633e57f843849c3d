"""Image-caption pairs: uint8 images and caption token ids in memory, the CLIP encoder kind
(an image tower and a text tower), zero-shot classification and image-text retrieval.

The exported features are the image embeddings (so kNN and the linear probe apply as for
images); zero-shot and retrieval also embed text (class prompts, the queries' captions), which
`extra_features` adds to what the protocols receive. Raw pixels stay the raw baseline (it has
no text side, so the cross-modal protocols leave its row empty).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfsup.augment import build_augment
from selfsup.config import Config
from selfsup.embedding import encode_rows
from selfsup.errors import SelfsupError
from selfsup.modalities.base import Batch, Modality
from selfsup.modalities.image import ImageModality
from selfsup.modalities.image_report import neighbours_section
from selfsup.modalities.pair_report import retrieval_section
from selfsup.modalities.sections import Section
from selfsup.modalities.text import TextModality
from selfsup.models.captioner import WordTextSpec, build_vocabulary
from selfsup.models.clip import ClipEncoderSpec
from selfsup.models.text_scratch import ScratchTextSpec

PAIR_FIELDS = ("image", "input_ids", "attention_mask")
# Zero-shot prompts when neither the data nor eval.zeroshot_templates names any.
DEFAULT_TEMPLATES = ("a photo of a {}.",)
# model.text_tower: a local transformers folder (model.path), the byte-level scratch tower, or
# the scratch tower over a word vocabulary built from the training captions (captioning)
TEXT_TOWERS = ("transformers", "scratch", "words")
WORD_CONTEXT = 32  # the word tower's most tokens a caption (model.text_context counts bytes)


class PairModality(Modality):
    """captions:FILE|DIR and the cifar-captions demo."""

    name = "pair"
    fields = frozenset(PAIR_FIELDS)
    default_protocols = ("zeroshot", "image_text_retrieval", "knn")
    online_protocols = ("zeroshot", "image_text_retrieval")
    initial_row = "random"
    raw_row = "raw_pixels"
    classical_input = True
    encoder_kind = "clip"
    row_titles: ClassVar[dict[str, str]] = {
        "selfsup": "learned encoder",
        "random": "untrained encoder (same towers, as initialised)",
        "raw_pixels": "raw pixels (standardised; no text side)",
    }

    def encoder_spec(self, cfg: Config, train: Any) -> Any:
        tower = getattr(cfg.model, "text_tower", "transformers")
        if tower not in TEXT_TOWERS:
            raise SelfsupError(
                f"unknown model.text_tower {tower!r}; choose one of: {', '.join(TEXT_TOWERS)}"
            )
        if tower == "words":
            text = WordTextSpec(
                width=cfg.model.text_width,
                layers=cfg.model.text_layers,
                heads=cfg.model.text_heads,
                context=min(cfg.model.text_context, WORD_CONTEXT),
                vocab=build_vocabulary(train.captions, train.name),
            )
        elif tower == "scratch":
            text = ScratchTextSpec(
                width=cfg.model.text_width,
                layers=cfg.model.text_layers,
                heads=cfg.model.text_heads,
                context=cfg.model.text_context,
            )
        elif not cfg.model.path:
            raise SelfsupError(
                "an image-text run needs a text tower: pass --model PATH (a transformers folder "
                "with config + tokenizer; --set model.pretrained=false starts from random "
                "weights) or --set model.text_tower=scratch (a byte-level transformer trained "
                "from scratch, no files needed)"
            )
        else:
            text = TextModality().encoder_spec(cfg, train)
        return ClipEncoderSpec(ImageModality().encoder_spec(cfg, train), text, cfg.model.embed_dim)

    def augment(self, cfg: Config, spec: Any) -> Any:
        h, w = spec.image.height_width
        recipe = cfg.method.augment or "light"  # CLIP: a random square crop is all it uses
        return build_augment(recipe, cfg.method.crop_size or min(h, w), spec.image.in_channels)

    def describe_augment(self, augment: Any) -> str:
        return ImageModality().describe_augment(augment) + " (images; captions as they are)"

    def tensors(self, data: Any, encoder: Any) -> Batch:
        return {"image": encoder.preprocess(data.images), **encoder.tokenize_all(data.captions)}

    def encoder_input(self, batch: Batch) -> torch.Tensor:
        return batch["image"]

    def raw_features(
        self, bank: Any, queries: Any, with_bank: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return ImageModality().raw_features(bank, queries, with_bank)

    def extra_features(
        self, encoder: Any, data: Any, cfg: Config, device: torch.device | str
    ) -> dict[str, Any]:
        """Text embeddings the cross-modal protocols need: the queries' captions
        ("caption_features", row i pairs with query image i; "captions", their texts, since
        equal texts are matches) and, with class names, one zero-shot classifier row per class
        ("class_features": the normalised mean of the class's prompt embeddings)."""
        if not hasattr(encoder, "encode_text"):
            return {}
        queries = data.queries
        rows = encoder.tokenize_all(queries.captions)
        extra: dict[str, Any] = {
            "caption_features": encode_rows(encoder, rows, lambda b: b, device=device),
            "captions": list(queries.captions),  # equal texts are matches (template captions)
        }
        if queries.classes is not None:
            templates = zeroshot_templates(cfg, queries)
            extra["class_features"] = class_embeddings(encoder, queries.classes, templates, device)
        return extra

    def report_sections(
        self, encoder: Any, bank: Any, queries: Any, augment: Any, device: str
    ) -> list[Section]:
        return [
            ("retrieval", "Retrieval examples", retrieval_section(encoder, queries, device)),
            ("neighbours", "Nearest images", neighbours_section(encoder, bank, queries, device)),
        ]


def zeroshot_templates(cfg: Config, data: Any) -> tuple[str, ...]:
    """eval.zeroshot_templates ("|"-separated, each with {}), else the data's, else the default."""
    given = getattr(cfg.eval, "zeroshot_templates", None)
    if given:
        templates = tuple(t.strip() for t in given.split("|") if t.strip())
        bad = [t for t in templates if "{}" not in t]
        if bad or not templates:
            raise SelfsupError(
                "each zero-shot template needs {} where the class name goes; got "
                f"{bad or given!r}"
            )
        return templates
    return getattr(data, "templates", None) or DEFAULT_TEMPLATES


def class_embeddings(
    encoder: Any, classes: list[str], templates: tuple[str, ...], device: torch.device | str
) -> torch.Tensor:
    """(K, D) zero-shot weights: per class, the normalised mean of its normalised prompt
    embeddings (CLIP's prompt ensembling)."""
    prompts = [t.format(c.replace("_", " ")) for c in classes for t in templates]
    rows = encoder.tokenize_all(prompts)
    z = encode_rows(encoder, rows, lambda b: b, device=device)
    z = torch.nn.functional.normalize(z, dim=1).view(len(classes), len(templates), -1).mean(1)
    return torch.nn.functional.normalize(z, dim=1)
