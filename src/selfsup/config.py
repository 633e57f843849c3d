"""Typed run configuration: every default in one place, loaded from files and dotted overrides.

A run is described by a `Config` of plain dataclasses. The method section carries the method's
name plus its own parameters, which each method declares in its own dataclass (so adding a
method never touches this file); they are validated when the method is built.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from selfsup.coerce import coerce as _coerce
from selfsup.coerce import coerce_params
from selfsup.errors import SelfsupError
from selfsup.models.text import POOLINGS


@dataclass
class DataConfig:
    """Where the unlabeled data comes from and how it is read: the one home of the settings
    every source loader receives (`selfsup.data.load_data`)."""

    source: str = "digits"  # NAME or NAME:PATH, see `selfsup datasets`
    # a second image source, unaligned with the first (CycleGAN's domain B; --data-b)
    source_b: str | None = None
    image_size: int | None = None  # resize a folder of mixed sizes; None keeps the native size
    download: bool = False  # fetch CIFAR with torchvision (needs internet)
    skip_corrupt: bool = False  # leave out undecodable images / WAV files instead of failing
    series_lengths: str = "pad"  # series of different lengths: pad (with a mask) | crop
    sample_rate: int = 16000  # wav:DIR files are resampled to this rate (Hz)
    stream_text: str = "auto"  # text:FILE read on demand: auto (above 256 MB) | true | false
    # wds:PATTERN shards (data/shards.py)
    workers: int = 2  # DataLoader processes decoding streamed shards (0: in the training process)
    shuffle_buffer: int = 1000  # samples each worker shuffles among, within a shard
    heldout_fraction: float = 0.02  # samples held out by the hash of their key, never trained on
    eval_samples: int = 10000  # held-out queries, and training bank, decoded for evaluation
    gpu_decode: bool = True  # on CUDA, JPEGs are decoded in batches on the GPU (nvJPEG)


@dataclass
class ModelConfig:
    """The encoder architecture."""

    backbone: str = "convnet"  # images: see `selfsup backbones`
    cifar_stem: bool | None = None  # None: a 3x3 stride-1 stem for images of at most 64 pixels
    path: str | None = None  # text: a local transformers model folder (config + tokenizer)
    pretrained: bool = True  # text: start from the folder's weights; false: random init
    # text: cls | mean | first-last-avg; None: the folder's own (a sentence-transformers
    # folder's Pooling config), else mean
    pooling: str | None = None
    # text: tokens per sentence, longer ones cut (counted at start-up); None: the model's own
    # limit (sentence_bert_config.json's max_seq_length, else max_position_embeddings and
    # the tokenizer's model_max_length, at most 512), as sentence-transformers does
    max_length: int | None = None
    embed_dim: int = 512  # image-text pairs: width of the shared image-text space (CLIP)
    text_tower: str = "transformers"  # image-text: transformers (model.path) | scratch | words
    text_width: int = 256  # scratch text tower: width (CLIP: 512)
    text_layers: int = 4  # scratch text tower: causal transformer blocks (CLIP: 12)
    text_heads: int = 4  # scratch text tower: attention heads (CLIP: 8)
    text_context: int = 77  # scratch text tower: byte tokens per caption (CLIP: 77 BPE tokens)


@dataclass
class MethodConfig:
    """The self-supervised method: its name, its augmentation and its own parameters."""

    name: str = "simclr"
    augment: str | None = None  # recipe name; None picks one for the data (see augment.recipes)
    crop_size: int | None = None  # side of the training views; None: the image size
    params: dict[str, Any] = field(default_factory=dict)  # validated by the method's own config


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (linear warm-up, then cosine decay).

    A field left None is not yours: it takes the method's published small-data setting (each
    method's `optimiser`, e.g. SimSiam's SGD at 0.03, MAE's AdamW at 1.5e-4), and what the
    method does not give comes from LIBRARY_OPTIM below. Naming another optimiser than the
    method's (`optim.name`) starts from LIBRARY_OPTIM instead of the method's setting. A run
    saves the resolved values in its config.json (resume and compare see them) and prints
    where each came from.
    """

    name: str | None = None  # lars | sgd | adamw
    lr: float | None = None  # base learning rate for a global batch of 256; scaled linearly
    weight_decay: float | None = None
    momentum: float | None = None  # SGD and LARS
    betas: tuple[float, float] | None = None  # AdamW
    lars_eta: float | None = None  # LARS trust coefficient (see lars_clip_lr)
    exclude_bias_and_norm: bool | None = None  # no weight decay / LARS adaptation for 1-d params
    warmup: float | None = None  # fraction of training spent warming up
    final_lr_fraction: float | None = None  # cosine decays to lr * this
    schedule: str | None = None  # after warm-up: cosine | linear (word2vec's) to the final lr
    # LARS moves a layer by lr * eta of its norm per step. Clipped as in solo-learn's CIFAR
    # recipes (min(eta * |w| / |update|, scheduled lr)), a step moves it by at most eta (2 %)
    # whatever the batch; unclipped at batch 4096 under linear scaling it is 0.4 * 16 * 0.02 =
    # 12.8 %. None (the default) clips exactly when that bound binds, i.e. when the scaled lr
    # exceeds 1 (batch > 640 at lr 0.4). Below that, unclipped steps are already under 2 %, and
    # the clip changes the dynamics for the worse on a short budget: 10 minutes of CIFAR-10 on
    # 2 CPU cores gave kNN 60.28 % unclipped and 57.20 % clipped (batch 256, fp32).
    lars_clip_lr: bool | None = None


# What fills every optimiser setting a method does not give, and the whole setting of a method
# without a published small-data one (the metric losses, the autoencoders): LARS at 0.4 per
# 256 samples, as solo-learn's CIFAR SimCLR, measured here (docs/benchmarks.md).
LIBRARY_OPTIM = OptimConfig(
    name="lars",
    lr=0.4,
    weight_decay=1e-5,
    momentum=0.9,
    betas=(0.9, 0.999),
    lars_eta=0.02,
    exclude_bias_and_norm=True,
    warmup=0.05,
    final_lr_fraction=0.0,
    lars_clip_lr=None,
    schedule="cosine",
)


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 60
    batch_size: int = 256  # global batch: split evenly across processes under torchrun
    time_budget: float | None = None  # minutes; when set, the schedule is sized to the clock
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast where it is fast: CUDA, CPUs with AVX512-BF16 or AMX
    channels_last: bool = True
    compile: bool = False  # torch.compile the method's forward
    sync_batchnorm: bool = False  # under DDP: BatchNorm statistics over the global batch
    eval_every: int = 10  # epochs between online kNN evaluations (0: only at the end)
    checkpoint_every: int = 1  # epochs between checkpoints
    log_every: int = 10  # steps between metric lines
    progress: bool = True  # progress bar on the terminal
    report: bool = True  # write report.html into the run directory at the end


@dataclass
class EvalConfig:
    """Evaluation protocols run at the end of training and by `selfsup evaluate`."""

    protocols: tuple[str, ...] | None = None  # None: the modality's (images knn,linear,geometry)
    data: str | None = None  # evaluate on this source instead of the training data (STS-B)
    knn_k: int = 200
    knn_t: float = 0.1
    # true: also evaluate a random encoder and the raw input; false: neither; classical names
    # (pca,mds,isomap,lle; `selfsup.evaluate.classical`): both, plus those embeddings of the raw
    # input (images, series), scored by the same protocols
    baselines: bool | tuple[str, ...] = True
    finetune_fraction: float = 1.0  # finetune protocol: stratified fraction of labels (0.01..1)
    finetune_epochs: int = 10
    finetune_lr: float = 1e-3  # AdamW; the head's lr, ViT blocks decayed by finetune_llrd
    finetune_batch_size: int = 128
    finetune_llrd: float = 0.75  # layer-wise lr decay (ViT backbones only)
    zeroshot_templates: str | None = None  # pairs: "a photo of a {}.|a {}." (None: data's)
    # raw-input baseline: bank and queries of at most this many rows each (its features are
    # dense floats of the input's size); above it, a seeded stratified sample, said in eval.json
    raw_bank_limit: int = 100_000
    # DTW 1-NN baseline (series): at most this many DTW cells (sum over bank x query pairs of
    # len x len x channels; 1e10 is about 2 minutes on one core); above it, a seeded stratified
    # sample of the queries, then of the bank, said in eval.json; 0: no DTW row
    dtw_limit: int = 10_000_000_000
    # classical rows: their width (None: the learned encoder's output width), capped by the
    # input's features and the rows fitted on
    baseline_dim: int | None = None
    # classical rows that do not scale (mds, isomap, lle: O(n^2) memory, O(n^3) time): fitted on
    # a seeded sample of this many bank rows, the rest and the queries placed out of sample
    baseline_fit_samples: int = 2000
    baseline_neighbors: int = 10  # isomap and lle: neighbours of each point's graph


@dataclass
class Config:
    """A whole run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in fields(Config)}


def _section_classes() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {name: hints[name] for name in SECTIONS}


# Keys under `method.` that are the section's own, not the method's parameters.
METHOD_KEYS = ("name", "augment", "crop_size")
# Optional settings where the word "none" is a value (the augmentation recipe that does
# nothing), not the unset None that picks a default
NAMES_NONE = frozenset({"method.augment"})


def _coerce_method_params(cfg: Config) -> None:
    """Type the method's parameters in place when the method is registered (an unknown method
    is reported when it is built)."""
    from selfsup.methods import available_methods, get_method  # lazily: methods import torch

    if cfg.method.params and cfg.method.name in available_methods():
        config_cls = get_method(cfg.method.name).Config
        cfg.method.params = coerce_params(config_cls, cfg.method.params)


def parse_scalar(text: str) -> Any:
    """Read a command-line value: JSON where it parses (numbers, true, lists), else the string."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Set dotted keys (`optim.lr`, `method.temperature`) on `cfg`, checking each key and value.

    Keys under `method.` other than `name`, `augment` and `crop_size` are the method's own: they
    are typed by the method's Config dataclass once all keys are set (`coerce_params`), and
    checked against it when the method is built.
    """
    classes = _section_classes()
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in classes or not name:
            raise SelfsupError(
                f"unknown config key {key!r}; keys look like SECTION.NAME with SECTION one of: "
                f"{', '.join(classes)}"
            )
        target = getattr(cfg, section)
        hints = get_type_hints(classes[section])
        if section == "method" and name not in METHOD_KEYS:
            if name == "params" and isinstance(value, dict):
                target.params.update(value)
            else:
                target.params[name] = value
            continue
        if name not in hints:
            raise SelfsupError(
                f"unknown config key {key!r}; valid keys in [{section}]: {', '.join(hints)}"
            )
        if key in NAMES_NONE and isinstance(value, str) and value.lower() == "none":
            setattr(target, name, "none")  # the recipe named "none", not "unset"
            continue
        setattr(target, name, _coerce(value, hints[name], key))
    _coerce_method_params(cfg)
    validate(cfg)
    return cfg


def flatten(
    tree: dict[str, Any],
    prefix: str = "",
    whole: tuple[str, ...] = ("method.params",),
    keep_empty: bool = False,
) -> dict[str, Any]:
    """A nested mapping (a config file, config.json) as dotted keys. The keys in `whole` keep
    their mapping as one value; an empty mapping is dropped unless `keep_empty`."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in whole and (value or not keep_empty):
            flat.update(flatten(value, dotted + ".", whole, keep_empty))
        else:
            flat[dotted] = value
    return flat


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into dotted keys."""
    path = Path(path)
    if not path.is_file():
        raise SelfsupError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            tree = tomllib.loads(text)
        else:
            tree = json.loads(text)
    except ValueError as err:
        raise SelfsupError(f"config file {path} could not be parsed: {err}") from None
    if not isinstance(tree, dict):
        raise SelfsupError(f"config file {path} must hold a mapping of sections")
    return flatten(tree)


def config_from_dict(tree: dict[str, Any]) -> Config:
    """Rebuild a Config from `Config.to_dict()` output (as saved in a run directory)."""
    return apply_overrides(Config(), flatten(tree))


# What a resumed run may change: how long it trains, how it reports, where it runs and how it is
# evaluated. Everything else (data, model, method, optimizer, batch, seed) would make the
# checkpoint's state, schedule or random streams mean something else.
RESUME_KEYS = frozenset(
    {
        "train.epochs",
        "train.time_budget",
        "train.log_every",
        "train.eval_every",
        "train.checkpoint_every",
        "train.progress",
        "train.report",
        "train.device",
    }
)
RESUME_SECTIONS = ("eval.",)


def _expand_params(overrides: dict[str, Any]) -> dict[str, Any]:
    """`method.params = {k: v}` as separate `method.k` keys, the way they are compared."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "method.params" and isinstance(value, dict):
            out.update({f"method.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _resolved(cfg: Config, key: str) -> Any:
    """The value `key` has in `cfg`; a method parameter the user never set reads as its default."""
    section, _, name = key.partition(".")
    target = getattr(cfg, section)
    if section == "method" and name not in METHOD_KEYS:
        from selfsup.methods import get_method  # lazily: methods import torch

        return getattr(get_method(cfg.method.name).make_config(cfg.method.params), name)
    return getattr(target, name)


def resume_config(saved: Config, overrides: dict[str, Any]) -> Config:
    """The config a resumed run continues with: `saved`, plus the overrides safe on resume.

    `saved` is the run's config (config.json); `overrides` are the dotted keys the user actually
    gave for this resume -- from flags, --set and a --config file -- not a whole Config filled
    with defaults (an ungiven key must not read as a change). Safe to change: train.epochs
    (only more), train.time_budget, train.device, train.log_every, train.eval_every,
    train.checkpoint_every, train.progress, train.report and every eval.* key. Any other key
    given with a value other than the saved one is refused, all of them in one error; a key
    given with the saved value is fine.
    """
    overrides = _expand_params(overrides)
    given = apply_overrides(copy.deepcopy(saved), overrides)  # coerces and checks every key
    safe: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in overrides.items():
        old, new = _resolved(saved, key), _resolved(given, key)
        if key in RESUME_KEYS or key.startswith(RESUME_SECTIONS):
            if key == "train.epochs" and new < old:
                refused.append(f"train.epochs (saved {old}, given {new}: only more epochs)")
            else:
                safe[key] = value
        elif new != old:
            refused.append(f"{key} (saved {old!r}, given {new!r})")
    if refused:
        raise SelfsupError(
            f"cannot change {', '.join(refused)} when resuming: a resumed run continues with "
            "the settings it started with (only train.epochs, train.time_budget, train.device, "
            "train.log_every, train.eval_every, train.checkpoint_every, train.progress, "
            "train.report and eval.* may change). Drop these settings to resume, or start a new "
            "run with another --out instead"
        )
    return apply_overrides(copy.deepcopy(saved), safe)


def validate(cfg: Config) -> None:
    """Check values that a type alone does not constrain, naming the first bad one."""
    from selfsup.evaluate.classical import check_baselines  # lazily: evaluation imports torch
    from selfsup.evaluate.registry import PROTOCOLS

    o, t, e = cfg.optim, cfg.train, cfg.eval
    unknown_protocols = [p for p in e.protocols or () if p not in PROTOCOLS]
    checks = [
        (t.epochs >= 1, "train.epochs must be at least 1"),
        (t.batch_size >= 2, "train.batch_size must be at least 2"),
        (o.lr is None or (o.lr > 0 and math.isfinite(o.lr)), "optim.lr must be a positive number"),
        (o.warmup is None or 0 <= o.warmup < 1, "optim.warmup is a fraction of training in [0, 1)"),
        (o.name in (None, "lars", "sgd", "adamw"), "optim.name must be lars, sgd or adamw"),
        (
            o.weight_decay is None or (o.weight_decay >= 0 and math.isfinite(o.weight_decay)),
            "optim.weight_decay must be a number >= 0",
        ),
        (o.momentum is None or 0 <= o.momentum < 1, "optim.momentum must be in [0, 1)"),
        (
            o.betas is None or (len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas)),
            "optim.betas must be two numbers in [0, 1), e.g. 0.9,0.95",
        ),
        (
            o.lars_eta is None or (o.lars_eta > 0 and math.isfinite(o.lars_eta)),
            "optim.lars_eta must be a positive number",
        ),
        (
            o.final_lr_fraction is None or 0 <= o.final_lr_fraction <= 1,
            "optim.final_lr_fraction (the cosine's end, as a fraction of the peak lr) must be "
            "in [0, 1]",
        ),
        (
            o.schedule in (None, "cosine", "linear"),
            "optim.schedule must be cosine or linear",
        ),
        (e.knn_k >= 1, "eval.knn_k must be at least 1"),
        (e.knn_t > 0 and math.isfinite(e.knn_t), "eval.knn_t must be a positive number"),
        (e.raw_bank_limit >= 2, "eval.raw_bank_limit (rows) must be at least 2"),
        (e.dtw_limit >= 0, "eval.dtw_limit (DTW cells) must be 0 (no DTW row) or more"),
        (
            e.baseline_dim is None or e.baseline_dim >= 1,
            "eval.baseline_dim (the classical rows' width) must be at least 1, or none for the "
            "learned encoder's",
        ),
        (
            e.baseline_neighbors >= 2 and e.baseline_fit_samples > e.baseline_neighbors,
            "eval.baseline_neighbors must be at least 2 and eval.baseline_fit_samples more than it",
        ),
        (
            cfg.model.max_length is None or cfg.model.max_length >= 2,
            "model.max_length (tokens per sentence) must be at least 2",
        ),
        (
            cfg.model.pooling in (None, *POOLINGS),
            f"model.pooling must be one of {', '.join(POOLINGS)}",
        ),
        (
            not unknown_protocols,
            f"unknown eval.protocols {', '.join(unknown_protocols)}; "
            f"choose from: {', '.join(PROTOCOLS)}",
        ),
        (
            t.time_budget is None or (t.time_budget > 0 and math.isfinite(t.time_budget)),
            "train.time_budget (minutes) must be a positive number",
        ),
        (t.checkpoint_every >= 1, "train.checkpoint_every (epochs) must be at least 1"),
        (t.log_every >= 1, "train.log_every (steps) must be at least 1"),
        (
            t.eval_every >= 0,
            "train.eval_every (epochs) must be at least 0 (0: evaluate only at the end)",
        ),
        (0 <= t.seed < 2**62, "train.seed must be an integer in [0, 2**62)"),
        (
            cfg.method.crop_size is None or cfg.method.crop_size >= 4,
            "method.crop_size must be at least 4 pixels",
        ),
        (
            cfg.data.image_size is None or cfg.data.image_size >= 4,
            "data.image_size must be at least 4 pixels",
        ),
        (
            0 < e.finetune_fraction <= 1
            and e.finetune_epochs >= 1
            and e.finetune_lr > 0
            and e.finetune_batch_size >= 2
            and 0 < e.finetune_llrd <= 1,
            "eval.finetune_fraction must be in (0, 1], finetune_epochs >= 1, finetune_lr > 0, "
            "finetune_batch_size >= 2, finetune_llrd in (0, 1]",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise SelfsupError(f"bad config value: {message}")
    check_baselines(e.baselines)
