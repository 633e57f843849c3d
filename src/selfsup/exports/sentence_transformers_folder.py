"""`--format sentence-transformers`: a text encoder as a folder `SentenceTransformer(path)` loads
as it is: the transformers model and tokenizer at the top (so `AutoModel.from_pretrained(path)`
reads it too), `sentence_bert_config.json` (max_seq_length), `1_Pooling/` and, when the
encoder's embeddings are unit length, `2_Normalize/`, listed in `modules.json`.

The transformer and tokenizer files are written by transformers' `save_pretrained`; the three
small module files are written here in the layout sentence-transformers has read since v2 (and
`models.text.folder_settings` reads back), because building a `SentenceTransformer` to save it
would need the package at export time, reload the weights from disk and write its own README
over the model card."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from selfsup.errors import SelfsupError
from selfsup.exports.formats import ExportOptions

MODULES = "modules.json"
POOLING_DIR = "1_Pooling"
NORMALIZE_DIR = "2_Normalize"
ST_CONFIG = "sentence_bert_config.json"
# our pooling -> the sentence-transformers Pooling key that computes exactly the same vector
POOLING_MODES = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}
ALL_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_mean_tokens",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def check(encoder: Any, options: ExportOptions) -> None:
    """A `text` encoder (a transformers model) whose pooling sentence-transformers computes."""
    if encoder.kind != "text":
        raise SelfsupError(
            f"--format sentence-transformers takes text encoders (a transformers model, kind "
            f"'text'); this run's encoder is of kind {encoder.kind!r}: export it with "
            "--format onnx or --format selfsup"
        )
    pooling = encoder.spec.pooling
    if pooling not in POOLING_MODES:
        raise SelfsupError(
            f"this text encoder pools with {pooling!r} (the mean of the first block's and the "
            "top layer's token states), which sentence-transformers' Pooling module does not "
            "compute: its embeddings would differ. Export it with --format onnx or "
            "--format selfsup, or train with --set model.pooling=mean (or cls)"
        )


def paths(folder: Path, encoder: Any, options: ExportOptions) -> list[Path]:
    """The module files, the model's weights and config, and the tokenizer's files (their names
    depend on the tokenizer: found by saving it to a scratch folder)."""
    with tempfile.TemporaryDirectory() as scratch:
        encoder.tokenizer.save_pretrained(scratch)
        tokenizer_files = sorted(p.name for p in Path(scratch).iterdir())
    names = [MODULES, ST_CONFIG, POOLING_DIR, "config.json", "model.safetensors"]
    if encoder.spec.normalize:
        names.append(NORMALIZE_DIR)
    return [folder / name for name in dict.fromkeys([*names, *tokenizer_files])]


def write(encoder: Any, folder: Path, options: ExportOptions) -> list[Path]:
    spec = encoder.spec
    encoder.model.save_pretrained(folder, safe_serialization=True)
    encoder.tokenizer.save_pretrained(folder)
    _write_json(folder / ST_CONFIG, {"max_seq_length": spec.max_length, "do_lower_case": False})
    modes = dict.fromkeys(ALL_MODES, False) | {POOLING_MODES[spec.pooling]: True}
    _write_json(
        folder / POOLING_DIR / "config.json",
        {"word_embedding_dimension": encoder.out_dim, **modes, "include_prompt": True},
    )
    modules = [
        _module(0, "", "Transformer"),
        _module(1, POOLING_DIR, "Pooling"),
    ]
    if spec.normalize:  # sentence-transformers' Normalize has no config: an empty folder
        (folder / NORMALIZE_DIR).mkdir(parents=True, exist_ok=True)
        modules.append(_module(2, NORMALIZE_DIR, "Normalize"))
    _write_json(folder / MODULES, modules)
    return sorted(folder.iterdir())


def _module(idx: int, path: str, name: str) -> dict[str, Any]:
    return {
        "idx": idx,
        "name": str(idx),
        "path": path,
        "type": f"sentence_transformers.models.{name}",
    }


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def load_snippet(folder: str, encoder: Any) -> str:
    """How to load this export, for the model card."""
    return (
        "from sentence_transformers import SentenceTransformer\n\n"
        f'model = SentenceTransformer("{folder}", device="cpu")\n'
        'embeddings = model.encode(["a first sentence", "another one"])'
    )


def card_notes(encoder: Any) -> list[str]:
    """What the model card says before the snippet: the chain of modules."""
    spec = encoder.spec
    chain = f"the transformer, then {spec.pooling} pooling of its token states"
    if spec.normalize:
        chain += ", then normalisation to unit length"
    return [
        f"The folder is a sentence-transformers model: {chain}; at most {spec.max_length} "
        "tokens a sentence (special tokens included), as in training. `encode` gives the "
        "embeddings `selfsup.embed` gives."
    ]
