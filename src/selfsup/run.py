"""A run from start to end: set up, train, export, evaluate, report.

Reading order: `pretrain` checks everything it can before any work (config, method, protocols,
run directory, device), loads the data and carves a held-out split, builds the method through
the modality, resumes if asked, hands a `train.Loop` to `train.train`, then `finish` exports the
encoder, evaluates it beside the baselines and writes the report. Nothing here branches on a
modality or a method: those answer through `selfsup.modalities` and `selfsup.methods`.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from selfsup import distributed
from selfsup.checkpoint import load_checkpoint, set_rng_state
from selfsup.config import Config, ModelConfig, config_from_dict, resume_config, validate
from selfsup.data.heldout import carve_heldout, save_heldout
from selfsup.data.registry import check_compatible, source_modality
from selfsup.data.split import StreamedSplit
from selfsup.devices import bf16_is_fast, cpu_model, resolve_device
from selfsup.embedding import mean_over_rows, reuse_features
from selfsup.errors import SelfsupError
from selfsup.evaluate.classical import check_classical_input
from selfsup.evaluate.registry import check_needs
from selfsup.evaluate.suite import (
    EvalData,
    evaluate_with_baselines,
    final_and_online,
    format_table,
    online_evaluation,
)
from selfsup.export import save_encoder
from selfsup.methods import Method, available_methods, get_method
from selfsup.methods.base import MAIN, MAIN_UPDATE
from selfsup.metrics import MetricsLog, truncate_after
from selfsup.modalities import Modality, get_modality
from selfsup.modalities.image import SOURCE_B_FIELD
from selfsup.optim import build_optimizer, describe_optim, resolve_optim
from selfsup.run_data import (
    load_run_splits,
    requested_protocols,
    run_evaluation_data,
    with_source_b,
)
from selfsup.rundir import (
    RunDir,
    check_run_dir,
    default_run_name,
    never_checkpointed,
    prepare_run_dir,
    source_paths,
)
from selfsup.train import BatchSource, Loop, MemoryBatches, Progress, TrainingInterrupted, train

# Printed when a run starts with a method that trains with human labels (SupCon, supervised
# SimCSE): it is not self-supervised.
SUPERVISED_LINE = (
    "SUPERVISED: method {name!r} trains with the labels; this run is not self-supervised"
)


@dataclass
class RunResult:
    """What `pretrain` hands back."""

    run_dir: Path
    encoder: Any
    evaluation: dict[str, Any] = field(default_factory=dict)
    samples_per_second: float = 0.0
    epochs: float = 0.0


def build_method(cfg: Config, modality: Modality, train_data: Any) -> Method:
    """The method of `cfg` with its encoder built from the training data, randomly initialised."""
    method_cls = get_method(cfg.method.name)
    method_cfg = method_cls.make_config(cfg.method.params)
    spec = method_cls.own_encoder_spec(method_cfg, train_data)
    if spec is None:
        spec = modality.encoder_spec(cfg, train_data)
    augment = modality.augment(cfg, spec)
    return method_cls(spec, method_cfg, augment)


def _check_method_fits(method_cls: type, modality: Modality, source: str) -> None:
    """Fail before loading when the method does not serve this data's modality (its declared
    `modalities`), naming the methods that do, or needs fields its samples cannot provide."""
    if modality.name not in method_cls.modalities:
        serving = [
            name for name in available_methods() if modality.name in get_method(name).modalities
        ]
        raise SelfsupError(
            f"method {method_cls.name!r} trains on {' or '.join(sorted(method_cls.modalities))} "
            f"data, but {source} holds {modality.name} samples; the methods for "
            f"{modality.name} data are: {', '.join(serving)} (`selfsup methods` lists each "
            "method's modalities)"
        )
    provided = modality.fields | {"label", "index"}
    optional = method_cls.optional_inputs
    missing = resolved_inputs(method_cls.inputs, modality) - provided - optional
    if missing:
        raise SelfsupError(
            f"method {method_cls.name!r} reads "
            f"{', '.join(sorted(method_cls.inputs)).replace(MAIN, 'images or series')} but "
            f"{source} holds {modality.name} samples ({', '.join(sorted(modality.fields))}); "
            f"see `selfsup methods` for the methods of each modality"
        )


def _check_source_b(cfg: Config, method_cls: type) -> None:
    """Fail before loading when a method that reads a second source (`image_b`) has none, or
    when `data.source_b` is given to a method that does not read it."""
    reads_b = SOURCE_B_FIELD in method_cls.inputs
    if reads_b and not cfg.data.source_b:
        raise SelfsupError(
            f"method {method_cls.name!r} translates between two image sources: give the "
            "second with --data-b NAME[:PATH] (or --set data.source_b=NAME[:PATH])"
        )
    if cfg.data.source_b and not reads_b:
        readers = [n for n in available_methods() if SOURCE_B_FIELD in get_method(n).inputs]
        raise SelfsupError(
            f"--data-b (data.source_b) is read only by the methods that translate between two "
            f"sources ({', '.join(readers)}); method {method_cls.name!r} trains on --data "
            "alone: drop --data-b"
        )
    if cfg.data.source_b and source_modality(cfg.data.source_b) != "image":
        raise SelfsupError(
            f"--data-b {cfg.data.source_b} holds {source_modality(cfg.data.source_b)} samples; "
            "the second source of a translation must hold images"
        )


def describe_views(modality: Modality, method: Method) -> str:
    """The start-up line saying what makes the training views: the modality's augmentation, or,
    for a method that never applies it (MLM, CPC), what the method does instead."""
    if method.views_note:
        return f"augmentation: {method.views_note.format(cfg=method.cfg)}"
    return modality.describe_augment(method.augment)


def resolved_inputs(inputs: frozenset[str], modality: Modality) -> frozenset[str]:
    """A method's inputs with "main" replaced by the modality's main field (image, series)."""
    if MAIN not in inputs:
        return inputs
    return (inputs - {MAIN}) | ({modality.main_field} if modality.main_field else {MAIN})


def training_fields(method: Method, modality: Modality, data: Any) -> dict[str, torch.Tensor]:
    """The data set as the loop sees it: only the fields the method declares.

    Labels reach a method only when it names "label" (SupCon): a self-supervised run cannot
    see them by accident. "index" is each sample's position (InstDisc's memory bank).
    """
    fields = modality.tensors(data, method.encoder)
    if "label" in method.inputs:
        if data.labels is None:
            raise SelfsupError(
                f"method {method.name!r} trains with labels, and {data.name} has none"
            )
        fields["label"] = data.labels
    if "index" in method.inputs:
        fields["index"] = torch.arange(len(data))
    inputs = resolved_inputs(method.inputs, modality)
    optional = method.optional_inputs
    missing = sorted(name for name in inputs - optional if name not in fields)
    if missing:
        raise SelfsupError(
            f"method {method.name!r} trains on {', '.join(missing)}, which {data.name} does not "
            "provide (sentence pairs come from nli:FILE or pairs:FILE sources)"
        )
    return {name: fields[name] for name in inputs if name in fields}


def write_figures(
    method: Method,
    modality: Modality,
    data: Any,
    root: Path,
    device: torch.device,
    n: int = 16,
    step: int | None = None,
) -> list[Path]:
    """Save the method's `figures` for the first `n` held-out samples as `figures/*.png`, or,
    at a periodic evaluation (`step`), as `figures/steps/TITLE-stepSTEP.png`."""
    if data is None or type(method).figures is Method.figures:
        return []
    fields = training_fields(method, modality, data)
    batch = {name: t[:n].to(device) for name, t in fields.items()}
    method.eval()
    with torch.no_grad():
        pictures = method.figures(batch)
    from PIL import Image

    folder = root / "figures" if step is None else root / "figures" / "steps"
    out = []
    for title, image in pictures.items():
        folder.mkdir(parents=True, exist_ok=True)
        name = slug(title) if step is None else f"{slug(title)}-step{step:07d}"
        path = folder / f"{name}.png"
        array = image.cpu().numpy() if isinstance(image, torch.Tensor) else image
        Image.fromarray(array).save(path)
        out.append(path)
    return out


def method_heldout_figures(
    method: Method, modality: Modality, data: Any, device: torch.device
) -> dict[str, float]:
    """The method's `heldout_figures`, averaged over every held-out sample (a density model's
    NLL); empty when the method has none."""
    if data is None or type(method).heldout_figures is Method.heldout_figures:
        return {}
    method.eval()
    return mean_over_rows(method.heldout_figures, training_fields(method, modality, data), device)


def slug(title: str) -> str:
    """A file-name-safe form of a figure title ("MAE: masked input" -> "mae-masked-input")."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "figure"


def pretrain(
    cfg: Config,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides: dict[str, Any] | None = None,
) -> RunResult:
    """Pretrain an encoder with the method of `cfg`, export it, evaluate it; return the result.

    Runs as one process, or as one of several under torchrun (`torch.distributed`). On resume,
    `overrides` (the dotted keys the user gave) are checked against the saved config. Every
    check that needs no data runs before the data is read, and every one that needs no training
    before training starts.
    """
    cfg, out, resume = _resumed(cfg, out, resume, overrides)
    cfg, modality, optim_sources, protocols = _settings(cfg, out, resume)
    device, dist = _processes(cfg)
    data_paths = source_paths(cfg.data.source) + source_paths(cfg.eval.data or "")
    data_paths += source_paths(cfg.data.source_b or "")
    check_run_dir(out, resume=resume, overwrite=overwrite, data_paths=data_paths)
    train_data, eval_data, record = _splits(cfg, out, resume, protocols)
    method = _announced_method(cfg, modality, train_data, optim_sources, dist)
    data = _training_data(cfg, method, modality, train_data, eval_data, device, dist)
    model = _place(method, cfg, device, dist)
    optimizers = {
        update: build_optimizer(method.update_groups(update), cfg.optim, cfg.train.batch_size)
        for update in method.updates
    }
    run = _open_run_dir(cfg, out, device, resume=resume, overwrite=overwrite, data=data_paths)
    if dist.is_main:
        save_heldout(run.root, record)
    torch.manual_seed(cfg.train.seed + 1 + dist.rank)  # augmentation draws differ across ranks
    progress = _restored(run, method, optimizers, dist, data) if resume else Progress()
    log = MetricsLog(
        run.metrics if dist.is_main else None, run.tensorboard if dist.is_main else None
    )

    def evaluate_now() -> dict[str, float]:
        who = f"the learned encoder of {run.root} at step {progress.step}"
        write_figures(method, modality, eval_data.queries, run.root, device, step=progress.step)
        own = method_heldout_figures(method, modality, eval_data.queries, device)
        return own | online_evaluation(
            method.exported(), modality, eval_data, cfg, device, method.augment, who
        )

    loop = Loop(cfg, model, method, optimizers, data, run, device, dist, log, progress)
    loop.evaluate = evaluate_now
    try:
        started = time.perf_counter()
        _train(loop)
        if dist.is_main:
            counts = {"train_samples": len(train_data), "eval_queries": len(eval_data.queries)}
            _record_training(run, progress, time.perf_counter() - started, counts)
        per_epoch = max(data.steps_per_epoch, 1)
        result = RunResult(run.root, method.exported(), epochs=progress.step / per_epoch)
        if data.skipped and dist.is_main:
            print(f"data: {data.skipped} undecodable images skipped in training (--skip-corrupt)")
        result.samples_per_second = (
            progress.step * cfg.train.batch_size / max(progress.train_seconds, 1e-9)
        )
        if dist.is_main:  # the other ranks leave now: nothing waits on rank 0's long evaluation
            with reuse_features():  # evaluation and report embed each sample once per encoder
                finish(cfg, method, modality, eval_data, protocols, run, result, device, loop)
    finally:
        log.close()
    return result


def _resumed(
    cfg: Config, out: str | Path | None, resume: bool, overrides: dict[str, Any] | None
) -> tuple[Config, Path, bool]:
    """The run directory, and on resume its saved config with the user's `overrides` (a run
    that stopped before its first checkpoint starts again from step 0)."""
    if out is None:
        if resume:
            raise SelfsupError("--resume needs --out RUN_DIR naming the run to continue")
        out = default_run_name(cfg.method.name, cfg.data.source)
    out = Path(out)
    if resume:
        saved = RunDir(out).config
        if saved.is_file():
            cfg = resume_config(
                config_from_dict(json.loads(saved.read_text())["config"]), overrides or {}
            )
        if never_checkpointed(out):  # nothing to continue from: the same run from step 0
            resume = False
            if distributed.is_main_process():
                print(
                    f"{out}: the run stopped before it wrote a checkpoint; starting it again "
                    "from step 0 with its saved config"
                )
    return cfg, out, resume


def _settings(
    cfg: Config, out: Path, resume: bool
) -> tuple[Config, Modality, Any, tuple[str, ...]]:
    """The checked config with the method's optimiser resolved, the modality, where the
    optimiser's values come from (None on resume: they print as saved) and the protocols."""
    validate(cfg)
    modality = get_modality(source_modality(cfg.data.source))
    method_cls = get_method(cfg.method.name)
    method_cls.make_config(cfg.method.params)
    # The method's published optimiser, the user's optim.* keys winning; config.json keeps the
    # resolved values (a resumed run's are already whole: they print as saved).
    optim, sources = resolve_optim(cfg.optim, method_cls.optimiser, method_cls.name)
    optim_sources = None if resume and RunDir(out).config.is_file() else sources
    cfg = dataclasses.replace(cfg, optim=optim)
    _check_method_fits(method_cls, modality, cfg.data.source)
    _check_source_b(cfg, method_cls)
    check_classical_input(cfg.eval.baselines, modality, cfg.data.source)
    cfg = method_backbone(cfg, method_cls, modality)
    protocols = requested_protocols(cfg, modality, method_cls.protocols)
    if cfg.eval.data:
        get_modality(source_modality(cfg.eval.data))
    return cfg, modality, optim_sources, protocols


def method_backbone(cfg: Config, method_cls: type, modality: Modality) -> Config:
    """`cfg` with the encoder the method was published with on this modality (its `backbones`)
    when the user left `model.backbone` at its default; config.json records the choice."""
    preferred = method_cls.backbones.get(modality.name)
    if preferred is None or cfg.model.backbone != ModelConfig.backbone:
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone=preferred))


def _processes(cfg: Config) -> tuple[torch.device, Any]:
    """This process's device and its place among the torchrun processes."""
    device = resolve_device(cfg.train.device)
    dist = distributed.init_distributed(device.type)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    if cfg.train.batch_size % dist.world_size:
        raise SelfsupError(
            f"train.batch_size {cfg.train.batch_size} must divide evenly over "
            f"{dist.world_size} processes"
        )
    return device, dist


def _splits(
    cfg: Config, out: Path, resume: bool, protocols: tuple[str, ...]
) -> tuple[Any, EvalData, Any]:
    """The training data, the evaluation data (checked against the encoder and the requested
    protocols now, not after training) and the record of the held-out split carved here."""
    splits = load_run_splits(cfg, out if resume else None)
    record = None
    if not resume:
        splits, record = carve_heldout(splits)
    train_data = splits.train
    if record is None and not resume and isinstance(train_data, StreamedSplit):
        record = train_data.heldout_record()  # a streamed set's rule (data.shards)
    if len(train_data) < cfg.train.batch_size:
        raise SelfsupError(
            f"train.batch_size {cfg.train.batch_size} is larger than the training data "
            f"({len(train_data)} samples); pass a smaller --batch-size"
        )
    eval_data = run_evaluation_data(cfg, splits)
    if cfg.data.source_b:  # a second, unaligned source (CycleGAN's domain B)
        train_data, eval_data = with_source_b(cfg, train_data, eval_data)
    if cfg.eval.data:  # checked now, not after training: the encoder must take its samples
        check_compatible(
            train_data, eval_data.queries, f"eval.data {cfg.eval.data}", encoder_only=True
        )
    if cfg.eval.protocols is not None:
        check_needs(protocols, eval_data.available(), eval_data.queries_from, eval_data.withheld)
    return train_data, eval_data, record


def _announced_method(
    cfg: Config, modality: Modality, train_data: Any, optim_sources: Any, dist: Any
) -> Method:
    """The method, built from the training seed and told the data's size; the main process
    says its views and optimiser (and that it uses labels)."""
    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg, modality, train_data)
    method.bind_data(len(train_data))  # per-sample state (memory banks), before a resume loads
    if dist.is_main:
        print(describe_views(modality, method))
        print(
            describe_optim(
                cfg.optim,
                cfg.train.batch_size,
                optim_sources,
                method.name,
                type(method).optimiser_reference,
            )
        )
        if len(method.updates) > 1:
            print(
                f"optimisers: one each for {', '.join(method.updates)}, each as above (a "
                "network's lr scaled by its groups' lr_scale); they step in this order"
            )
        if method.uses_labels:
            print(SUPERVISED_LINE.format(name=method.name))
    return method


def _training_data(
    cfg: Config,
    method: Method,
    modality: Modality,
    train_data: Any,
    eval_data: EvalData,
    device: torch.device,
    dist: Any,
) -> BatchSource:
    """The fields the method reads, batch by batch: in memory, on the device when they fit (one
    index_select per batch), or streamed by a split that makes its own batch source (shards);
    the main process prints the data's and the modality's notes."""
    if isinstance(train_data, StreamedSplit):  # the fields are made batch by batch
        if "index" in method.inputs:
            raise SelfsupError(
                f"method {method.name!r} keeps a memory bank indexed by sample, which a "
                f"streamed source ({train_data.name}) cannot index; write a store with "
                "`selfsup prepare` and train on store:DIR"
            )
        training_fields(method, modality, train_data)  # labels and fields checked now
        if dist.is_main:
            for line in modality.startup_notes(cfg, method.encoder, train_data, eval_data):
                print(line)
        return train_data.batch_source(
            lambda split: training_fields(method, modality, split),
            cfg.train.batch_size,
            dist.rank,
            dist.world_size,
            cfg.train.seed,
            device,
        )
    data = training_fields(method, modality, train_data)
    if getattr(train_data, "note", None) and dist.is_main:
        print(f"data: {train_data.note}")
    if dist.is_main:
        for line in modality.startup_notes(cfg, method.encoder, train_data, eval_data):
            print(line)
    on_host = all(isinstance(t, torch.Tensor) for t in data.values())  # not streamed text
    size = sum(t.numel() * t.element_size() for t in data.values()) if on_host else 0
    if device.type == "cuda" and on_host and size < 4 << 30:
        data = {k: v.to(device) for k, v in data.items()}  # one index_select per batch
    return MemoryBatches(data, cfg.train.batch_size, dist, cfg.train.seed, device)


def _restored(
    run: RunDir, method: Method, optimizers: dict[str, Any], dist: Any, data: BatchSource
) -> Progress:
    """Load the checkpoint: method, optimisers, this rank's random state, the data position
    (checked by the batch source); the metrics log is cut back to the checkpoint's step."""
    ckpt = load_checkpoint(run.checkpoint)
    if len(ckpt["rng"]) != dist.world_size:  # each rank's random state: exact for one world size
        raise SelfsupError(
            f"cannot resume {run.root} on {dist.world_size} process(es): its checkpoint was "
            f"written by {len(ckpt['rng'])}, and a resume is exact only on as many (torchrun "
            "--nnodes x --nproc-per-node); resume with that many processes"
        )
    data.restore(ckpt.get("data"))
    method.load_state_dict(ckpt["method"])
    # checkpoints written before methods could own several optimisers hold one, "optimizer"
    saved = ckpt["optimizers"] if "optimizers" in ckpt else {MAIN_UPDATE: ckpt["optimizer"]}
    for update, optimizer in optimizers.items():
        optimizer.load_state_dict(saved[update])
    progress = Progress.from_dict(ckpt["progress"])
    set_rng_state(ckpt["rng"][dist.rank])
    if dist.is_main:
        truncate_after(run.metrics, progress.step)
    return progress


def _train(loop: Loop) -> None:
    """Train; an interruption (Ctrl-C) has saved a checkpoint and says how to continue."""
    try:
        train(loop)
    except TrainingInterrupted as stop:
        raise SelfsupError(
            f"interrupted at step {stop.step}; checkpoint saved. Continue with: "
            f"selfsup pretrain --resume --out {loop.run.root}"
        ) from None


def _place(method: Method, cfg: Config, device: torch.device, dist: Any) -> nn.Module:
    """Move the method to the device; wrap it in DDP (and torch.compile) as configured."""
    if cfg.train.sync_batchnorm and dist.world_size > 1:
        if device.type != "cuda":
            raise SelfsupError(
                "train.sync_batchnorm needs CUDA devices (torch's SyncBatchNorm has no CPU "
                "kernel); drop --sync-batchnorm for CPU runs"
            )
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    method.to(device=device, memory_format=memory_format)
    model: nn.Module = method
    if dist.world_size > 1:
        model = DistributedDataParallel(
            method,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=method.find_unused_parameters,
        )
    if cfg.train.compile:
        model = torch.compile(model)
    return model


def _open_run_dir(
    cfg: Config, out: Path, device: torch.device, *, resume: bool, overwrite: bool, data: list
) -> RunDir:
    if distributed.is_main_process():
        run = prepare_run_dir(out, resume=resume, overwrite=overwrite, data_paths=data)
        if run.removed:
            what = "--overwrite: deleted" if overwrite else "started again in place: deleted"
            print(
                f"{what} {len(run.removed)} entries of the old run in {out}: "
                + ", ".join(p.name for p in run.removed)
            )
        if not resume:
            run.config.write_text(json.dumps({"config": cfg.to_dict()}, indent=2) + "\n")
            environment = _environment() | {
                "autocast": "bf16" if cfg.train.amp and bf16_is_fast(device) else "fp32"
            }
            run.environment.write_text(json.dumps(environment, indent=2) + "\n")
        else:  # the settings a resume may change (more epochs, evaluation) are kept
            run.config.write_text(json.dumps({"config": cfg.to_dict()}, indent=2) + "\n")
    distributed.barrier()
    return RunDir(out)


def _environment() -> dict[str, Any]:
    import selfsup

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "selfsup": getattr(selfsup, "__version__", "unknown"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": gpu or platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "world_size": distributed.world_size(),
        "cpu": cpu_model(),
        "gpu": gpu,
        "command": _command(),
    }


def _command() -> str:
    """The command line that started this run (the model card shows it), or where it came from
    when it was not `selfsup` (or `python -m selfsup`) on the command line."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if script.name == "selfsup" or (
        script.name == "__main__.py" and script.parent.name == "selfsup"
    ):
        return shlex.join(["selfsup", *sys.argv[1:]])
    return "the Python API (selfsup.pretrain); config.json holds its settings"


def _record_training(
    run: RunDir, progress: Progress, wall_seconds: float, counts: dict[str, int]
) -> None:
    """Add to environment.json what the model card reports: the training time (the steps' time
    the loop measured, over every session of a resumed run, and this session's wall clock of the
    loop, evaluations included) and how many samples it trained on and scored."""
    try:
        environment = json.loads(run.environment.read_text())
    except (OSError, ValueError):
        environment = {}
    environment["train_seconds"] = round(progress.train_seconds, 3)
    environment["train_wall_seconds"] = round(wall_seconds, 3)
    environment.update(counts)
    run.environment.write_text(json.dumps(environment, indent=2) + "\n")


def finish(
    cfg: Config,
    method: Method,
    modality: Modality,
    eval_data: EvalData,
    protocols: tuple[str, ...],
    run: RunDir,
    result: RunResult,
    device: torch.device,
    loop: Loop,
) -> None:
    """Export the encoder, evaluate it beside the baselines, write eval.json and the report;
    log the online figures as the training curve's last point (the loop logs only the earlier
    ones)."""
    step = loop.progress.step
    encoder = method.exported()  # DINO: the teacher backbone, which its paper evaluates
    save_encoder(encoder, run.root, exported=method.exported_as, step=step)
    who = f"the learned encoder of {run.root} at step {step} (the end of training)"
    own = method_heldout_figures(method, modality, eval_data.queries, device)
    if own:  # they need the whole method, not the encoder: `selfsup evaluate` cannot redo them
        record = {"step": step, "queries": eval_data.queries_from, "figures": own}
        run.method_figures.write_text(json.dumps(record, indent=2) + "\n")
        said = ", ".join(f"{k} {v:.4g}" for k, v in own.items())
        print(f"{method.name} on the held-out samples: {said}")
    if not protocols:  # the online figures alone (with protocols: from the final features)
        online = online_evaluation(encoder, modality, eval_data, cfg, device, method.augment, who)
        online = own | online
        loop.log.log({"kind": "eval", "step": step, "epoch": loop.progress.epoch} | online)
        print(
            f"epoch {loop.progress.epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in online.items())
        )
    write_figures(method, modality, eval_data.queries, run.root, device)
    print(
        f"trained {result.epochs:.1f} epochs at {result.samples_per_second:.0f} samples/s; "
        f"encoder saved in {run.root}"
    )
    try:
        if protocols:
            learned, online = final_and_online(
                encoder, modality, eval_data, cfg, protocols, device, method.augment, who
            )
            online = own | online
            loop.log.log({"kind": "eval", "step": step, "epoch": loop.progress.epoch} | online)
            result.evaluation = evaluate_with_baselines(
                encoder,
                modality,
                eval_data,
                cfg,
                protocols,
                device,
                method.augment,
                learned=learned,
                who=who,
            )
            caveat = modality.evaluation_caveat(eval_data, protocols)  # nothing measured quality
            if caveat:
                result.evaluation["caveat"] = caveat
            run.evaluation.write_text(json.dumps(result.evaluation, indent=2) + "\n")
            print(format_table(result.evaluation))
        if cfg.train.report:
            from selfsup.report import write_report

            print(f"report: {write_report(run.root, device=str(device))}")
    except KeyboardInterrupt:
        raise SelfsupError(
            f"interrupted during the final evaluation; training is finished and the encoder is "
            f"saved in {run.root}. Finish the run with: selfsup evaluate {run.root} && "
            f"selfsup report {run.root}"
        ) from None
