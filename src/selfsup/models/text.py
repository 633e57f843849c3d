"""The text encoder: a transformers model from a local folder, pooled to one vector a sentence.

It keeps its tokenizer, so `preprocess(["a sentence"])` and `selfsup.embed(encoder, strings)`
need nothing else. Nothing is fetched from a hub: the model is read from a local path
(`local_files_only`). Exported encoders carry their tokenizer and model config in
`text_encoder/` beside the weights, so they load after the original folder is gone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError

POOLINGS = ("cls", "mean", "first-last-avg")
ASSETS = "text_encoder"
# Files one of which a tokenizer needs: transformers 5 otherwise builds, without a word, a
# tokenizer that knows only the special tokens.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model")


def sentence_list(raw: Any) -> list[str]:
    """A sentence or a list of sentences as a non-empty list of str, or one clear error (what a
    text encoder's `preprocess` accepts)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(s, str) for s in raw):
        raise SelfsupError(
            f"this is a text encoder; pass a list of strings, not {type(raw).__name__}"
        )
    if not raw:
        raise SelfsupError("no sentences to embed")
    return list(raw)


@dataclass(frozen=True)
class TextEncoderSpec:
    """Everything needed to rebuild a text encoder: where its model came from, and how it pools."""

    kind: ClassVar[str] = "text"

    model: str  # local folder of a transformers model (config + tokenizer [+ weights])
    pretrained: bool = True  # False: the same architecture with random weights (from_config)
    pooling: str = "mean"  # cls | mean | first-last-avg (SimCSE's and BERT-whitening's)
    max_length: int = 32  # tokens per sentence, [CLS] and [SEP] included
    causal: bool = False  # each token attends only to itself and earlier ones (causal_lm)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise SelfsupError(
                f"unknown pooling {self.pooling!r}; choose one of: {', '.join(POOLINGS)}"
            )
        if self.max_length < 2:
            raise SelfsupError(f"max_length must be at least 2 tokens, got {self.max_length}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextEncoderSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def _load_parts(folder: Path, pretrained: bool, causal: bool = False) -> tuple[nn.Module, Any]:
    """(model, tokenizer) from a local transformers folder, or one clear error.

    `folder` may also be a selfsup run (or export) directory of a text encoder: its
    `text_encoder/` architecture and tokenizer with the trained weights of
    `encoder.safetensors`, so one run's encoder starts the next (MLM, then SimCSE).
    `causal` builds the model as a decoder (`is_decoder`: a causal attention mask).
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # its load reports list the dropped pooler on every load
    hf_logging.disable_progress_bar()

    if not folder.is_dir():
        raise SelfsupError(
            f"text model folder {folder} does not exist; pass --model PATH, a local folder "
            "with a transformers config.json and tokenizer files"
        )
    if (folder / "encoder.json").is_file() and (folder / ASSETS).is_dir():
        return _load_exported(folder, pretrained, causal)
    if not (folder / "config.json").is_file():
        raise SelfsupError(f"{folder} has no config.json: it is not a transformers model folder")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise SelfsupError(
            f"{folder} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the "
            "tokenizer into the model folder (tokenizer.save_pretrained(folder))"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise SelfsupError(f"no tokenizer could be read from {folder}: {err}") from None
    kwargs: dict[str, Any] = {"add_pooling_layer": False}  # BERT's pooler is unused: drop it
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if causal:
        config.is_decoder, config.use_cache = True, False
    try:
        if pretrained:
            model = AutoModel.from_pretrained(
                folder, local_files_only=True, config=config, **kwargs
            )
        else:
            model = AutoModel.from_config(config, **kwargs)
    except TypeError:  # a model class without a pooling layer argument
        model = (
            AutoModel.from_pretrained(folder, local_files_only=True, config=config)
            if pretrained
            else AutoModel.from_config(config)
        )
    except OSError as err:
        raise SelfsupError(f"the weights in {folder} could not be read: {err}") from None
    if len(tokenizer) > model.config.vocab_size:
        raise SelfsupError(
            f"the tokenizer in {folder} has {len(tokenizer)} tokens but the model's embedding "
            f"table only {model.config.vocab_size}: they do not belong together"
        )
    return model, tokenizer


def _load_exported(folder: Path, pretrained: bool, causal: bool) -> tuple[nn.Module, Any]:
    """(model, tokenizer) of a text encoder exported by a selfsup run, trained weights
    included when `pretrained`."""
    from safetensors.torch import load_file

    model, tokenizer = _load_parts(folder / ASSETS, pretrained=False, causal=causal)
    if pretrained:
        weights = folder / "encoder.safetensors"
        if not weights.is_file():
            raise SelfsupError(f"{folder} has no encoder.safetensors: was its run finished?")
        state = {
            key.removeprefix("model."): value for key, value in load_file(str(weights)).items()
        }
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise SelfsupError(f"the weights in {weights} do not fit its config: {err}") from None
    return model, tokenizer


class TextEncoder(nn.Module):
    """Token ids (B, L) and their attention mask -> pooled sentence features (B, out_dim)."""

    kind: ClassVar[str] = "text"

    def __init__(self, spec: TextEncoderSpec, *, model: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.spec = spec
        if model is None or tokenizer is None:
            model, tokenizer = _load_parts(
                Path(spec.model).expanduser(), spec.pretrained, spec.causal
            )
        self.model = model
        self.tokenizer = tokenizer
        self.out_dim: int = int(model.config.hidden_size)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["attention_mask"]
        width = int(mask.sum(dim=1).max()) if mask.numel() else 0  # drop all-padding columns
        ids, mask = batch["input_ids"][:, :width], mask[:, :width]
        need_layers = self.spec.pooling == "first-last-avg"
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=need_layers)
        if self.spec.pooling == "cls":
            return out.last_hidden_state[:, 0]
        if need_layers:  # the embeddings' output is layer 0; the first block's is layer 1
            hidden = (out.hidden_states[1] + out.hidden_states[-1]) / 2
        else:
            hidden = out.last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def preprocess(self, raw: Any) -> dict[str, torch.Tensor]:
        """Token ids and mask of a sentence or a list of sentences (truncated to max_length)."""
        return self._tokenize(sentence_list(raw), padding="longest")

    def tokenize_all(
        self, sentences: list[str], batch_size: int = 10_000
    ) -> dict[str, torch.Tensor]:
        """Token ids and masks of a whole data set, padded to max_length (rows of one width)."""
        parts = [
            self._tokenize(sentences[i : i + batch_size], padding="max_length")
            for i in range(0, len(sentences), batch_size)
        ]
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

    def _tokenize(self, sentences: list[str], padding: str) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            sentences,
            padding=padding,
            truncation=True,
            max_length=self.spec.max_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def save_assets(self, directory: Path) -> None:
        """The model's config and the tokenizer's files, into `directory/text_encoder`."""
        target = Path(directory) / ASSETS
        self.model.config.save_pretrained(target)
        self.tokenizer.save_pretrained(target)

    @classmethod
    def from_assets(cls, spec: TextEncoderSpec, directory: Path) -> TextEncoder:
        """The architecture and tokenizer from `directory/text_encoder` (weights loaded after)."""
        folder = Path(directory) / ASSETS
        if not folder.is_dir():
            raise SelfsupError(f"{directory} lacks {ASSETS}/ (the text encoder's tokenizer)")
        model, tokenizer = _load_parts(folder, pretrained=False, causal=spec.causal)
        return cls(spec, model=model, tokenizer=tokenizer)

    def extra_repr(self) -> str:
        s = self.spec
        return f"model={s.model}, pooling={s.pooling}, max_length={s.max_length}"
