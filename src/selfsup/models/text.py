"""The text encoder: a transformers model from a local folder, pooled to one vector a sentence.

It keeps its tokenizer, so `preprocess(["a sentence"])` and `selfsup.embed(encoder, strings)`
need nothing else. Nothing is fetched from a hub: the model is read from a local path
(`local_files_only`). Exported encoders carry their tokenizer and model config in
`text_encoder/` beside the weights, so they load after the original folder is gone.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError

POOLINGS = ("cls", "mean", "first-last-avg")
ASSETS = "text_encoder"
# The most tokens a sentence keeps when the folder names no limit of its own (a tokenizer with
# no model_max_length and no max_position_embeddings): BERT's.
MAX_LENGTH_CAP = 512
# sentence-transformers' Pooling config keys -> the pooling of selfsup that computes the same
ST_POOLINGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}
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
    # the folder's embeddings are unit vectors (a sentence-transformers Normalize module):
    # `selfsup.embed` normalises by default then; the encoder's forward stays unnormalised
    normalize: bool = False

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


@dataclass(frozen=True)
class FolderSettings:
    """How a model folder says its sentences are embedded, as sentence-transformers reads it
    (`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`), and where each
    setting came from: what a run uses for every `model.*` key the user leaves unset."""

    pooling: str | None  # None: the folder names none (a plain transformers folder)
    normalize: bool  # a Normalize module follows the pooling
    max_length: int  # tokens per sentence
    max_length_from: str  # where max_length came from, for the start-up line
    sentence_tuned: bool  # a sentence-transformers folder: already trained for sentences


def _json(path: Path, kind: type = dict) -> Any:
    """The JSON object (or list, `kind`) in `path`; an empty one if it is missing or not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return kind()
    return data if isinstance(data, kind) else kind()


def folder_settings(folder: str | Path) -> FolderSettings:
    """The pooling, normalisation and length limit a model folder states. A sentence-transformers
    folder gives them in its module configs; otherwise the limit is sentence-transformers' rule,
    min(max_position_embeddings, the tokenizer's model_max_length), at most MAX_LENGTH_CAP. A
    selfsup run (or export) gives the values its encoder was trained with."""
    root = Path(folder).expanduser()
    if (root / "encoder.json").is_file() and (root / ASSETS).is_dir():
        spec = _json(root / "encoder.json").get("spec", {})
        if isinstance(spec.get("text"), dict):  # a clip run: its text tower
            spec = spec["text"]
        return FolderSettings(
            spec.get("pooling"),
            bool(spec.get("normalize", False)),
            int(spec.get("max_length") or 32),
            f"the run's encoder.json ({root})",
            False,
        )
    modules = root / "modules.json"
    entries = [m for m in _json(modules, list) if isinstance(m, dict)]
    kinds = {str(m.get("type", "")).rsplit(".", 1)[-1]: m for m in entries}
    pooling = None
    if "Pooling" in kinds:
        config = _json(root / str(kinds["Pooling"].get("path", "")) / "config.json")
        modes = [key for key, on in config.items() if key.startswith("pooling_mode_") and on]
        if len(modes) == 1 and modes[0] in ST_POOLINGS:
            pooling = ST_POOLINGS[modes[0]]
        elif modes:
            raise SelfsupError(
                f"{root}'s sentence-transformers pooling ({', '.join(modes)}) is not one selfsup "
                f"computes; set model.pooling to one of {', '.join(POOLINGS)} to choose one"
            )
    other = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
    if other:
        warnings.warn(
            f"{modules} lists modules selfsup does not load ({', '.join(other)}): its embeddings "
            "are the transformer's pooled output, not sentence-transformers' after them",
            stacklevel=2,
        )
    limit, where = None, ""
    st_config = _json(root / "sentence_bert_config.json")
    if isinstance(st_config.get("max_seq_length"), int):
        limit, where = st_config["max_seq_length"], "max_seq_length in sentence_bert_config.json"
    else:
        positions = _json(root / "config.json").get("max_position_embeddings")
        tokenizer = _json(root / "tokenizer_config.json").get("model_max_length")
        known = [v for v in (positions, tokenizer) if isinstance(v, int) and 0 < v < 10**6]
        if known:
            limit = min([*known, MAX_LENGTH_CAP])
            where = "min(max_position_embeddings, the tokenizer's model_max_length, 512)"
    if limit is None:
        limit, where = MAX_LENGTH_CAP, "no limit in the folder: 512"
    return FolderSettings(pooling, "Normalize" in kinds, int(limit), where, bool(entries))


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
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if causal:
        config.is_decoder, config.use_cache = True, False

    def build(**kwargs: Any) -> nn.Module:
        if pretrained:
            return AutoModel.from_pretrained(folder, local_files_only=True, config=config, **kwargs)
        return AutoModel.from_config(config, **kwargs)

    try:
        try:
            model = build(add_pooling_layer=False)  # BERT's pooler is unused: drop it
        except TypeError:  # a model class without a pooling layer argument
            model = build()
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


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, H) token states averaged over each row's real tokens (mask 1) -> (B, H)."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class Pooling(nn.Module):
    """Token features -> one vector a sentence, as sentence-transformers' Pooling module: `cls`
    the first token, `mean` the mean over real tokens, `first-last-avg` that mean of the first
    block's and the top layer's states averaged, `last` the last real token (right padding)."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode
        self.needs_first_layer = mode == "first-last-avg"

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        states, mask = features["token_states"], features["attention_mask"]
        if self.mode == "cls":
            return states[:, 0]
        if self.mode == "last":
            last = (mask.sum(dim=1) - 1).clamp_min(0)
            return states[torch.arange(states.shape[0], device=states.device), last]
        if self.needs_first_layer:
            states = (features["first_layer_states"] + states) / 2
        return masked_mean(states, mask)

    def extra_repr(self) -> str:
        return self.mode


def drop_padding_columns(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Token ids and mask without the columns that are padding in every row (right padding)."""
    mask = batch["attention_mask"]
    width = int(mask.sum(dim=1).max()) if mask.numel() else 0
    return {"input_ids": batch["input_ids"][:, :width], "attention_mask": mask[:, :width]}


class TokenEncoder(nn.Module):
    """A chain as sentence-transformers': token ids and mask -> token states
    (`forward_features`, the subclass's transformer) -> one vector a sentence (`pool`, its
    `pooling` module). Methods that read token states call these, not the transformer."""

    pooling: Pooling

    def forward_features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def pool(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """One vector a sentence (B, out_dim) from `forward_features`' output."""
        return self.pooling(features)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.pool(self.forward_features(batch))


class TextEncoder(TokenEncoder):
    """Token ids (B, L) and their attention mask -> pooled sentence features (B, out_dim): the
    transformers model's token states, then a `Pooling` module (unnormalised: `selfsup.embed`
    normalises when `spec.normalize` says so)."""

    kind: ClassVar[str] = "text"

    def __init__(self, spec: TextEncoderSpec, *, model: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.spec = spec
        if model is None or tokenizer is None:
            model, tokenizer = _load_parts(
                Path(spec.model).expanduser(), spec.pretrained, spec.causal
            )
        self.model = model  # the transformers model: its weights export as "model.*"
        self.pooling = Pooling(spec.pooling)
        self.tokenizer = tokenizer
        self.out_dim: int = int(model.config.hidden_size)

    @property
    def config(self) -> Any:
        """The transformer's config (sizes, dropout, layer-norm epsilon, vocabulary size)."""
        return self.model.config

    def word_embeddings(self) -> nn.Embedding:
        """The input word-embedding table (what language-model heads tie their decoder to)."""
        return self.model.get_input_embeddings()

    def forward_features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The top layer's token states (B, L, H) and the attention mask (B, L), all-padding
        columns dropped (plus the first block's states when the pooling reads them)."""
        batch = drop_padding_columns(batch)
        first = self.pooling.needs_first_layer
        out = self.model(**batch, output_hidden_states=first)
        features = {
            "token_states": out.last_hidden_state,
            "attention_mask": batch["attention_mask"],
        }
        if first:  # the embeddings' output is layer 0; the first block's is layer 1
            features["first_layer_states"] = out.hidden_states[1]
        return features

    def preprocess(self, raw: Any) -> dict[str, torch.Tensor]:
        """Token ids and mask of a sentence or a list of sentences (truncated to max_length)."""
        return self._tokenize(sentence_list(raw), padding="longest")

    def tokenize_all(
        self, sentences: list[str], batch_size: int = 10_000
    ) -> dict[str, torch.Tensor]:
        """Token ids and masks of a whole data set, cut to max_length and padded to the longest
        row (rows of one width; a forward pass drops the all-padding columns anyway)."""
        parts = [
            self._tokenize(sentences[i : i + batch_size], padding="longest")
            for i in range(0, len(sentences), batch_size)
        ]
        width = max(p["input_ids"].shape[1] for p in parts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for p in parts:
            extra = width - p["input_ids"].shape[1]
            if extra:
                side = (extra, 0) if left else (0, extra)
                p["input_ids"] = nn.functional.pad(p["input_ids"], side, value=pad)
                p["attention_mask"] = nn.functional.pad(p["attention_mask"], side)
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

    def count_truncated(self, sentences: Any, batch_size: int = 10_000) -> int:
        """How many of `sentences` have more tokens than max_length (and are cut by
        `tokenize_all`), special tokens counted."""
        longer = 0
        for i in range(0, len(sentences), batch_size):
            ids = self.tokenizer(
                list(sentences[i : i + batch_size]),
                truncation=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            longer += sum(len(row) > self.spec.max_length for row in ids)
        return longer

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
        return (
            f"model={s.model}, pooling={s.pooling}, max_length={s.max_length}, "
            f"normalize={s.normalize}"
        )
