"""The one training loop: data on the device, batched views, loss, step, schedule, logs, resume.

Reading order: `pretrain` sets the run up (data, encoder, method, optimizer, run directory,
resume), `_train` is the loop, `_finish` exports the encoder and evaluates it.
"""

from __future__ import annotations

import json
import math
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from selfsup import distributed
from selfsup.augment import Augment, build_augment
from selfsup.checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state
from selfsup.config import Config, config_from_dict, validate
from selfsup.data import ImageData, load_data
from selfsup.errors import SelfsupError
from selfsup.evaluate.run import (
    evaluate_encoder_with_baselines,
    evaluation_split,
    format_table,
    online_evaluation,
)
from selfsup.export import save_encoder
from selfsup.methods import Method, get_method
from selfsup.metrics import MetricsLog, truncate_after
from selfsup.models import Encoder, EncoderSpec
from selfsup.optim import build_optimizer, lr_at, scaled_lr, set_lr
from selfsup.report import write_report
from selfsup.rundir import RunDir, check_run_dir, default_run_name, prepare_run_dir


@dataclass
class RunResult:
    """What `pretrain` hands back."""

    run_dir: Path
    encoder: Encoder
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)
    images_per_second: float = 0.0
    epochs: float = 0.0


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SelfsupError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SelfsupError(
            "device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu"
        )
    return device


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], computed in chunks."""
    c = images.shape[1]
    total, total_sq, count = (
        torch.zeros(c, dtype=torch.float64),
        torch.zeros(c, dtype=torch.float64),
        0,
    )
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
        total += x.sum(1)
        total_sq += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 matmuls and convolutions run natively: CUDA, or a CPU with AVX512-BF16/AMX.

    On a Zen 4 CPU with AVX512-BF16, a ResNet-18 forward+backward ran 2.3x faster under bf16
    autocast than in fp32; on CPUs without these instructions bf16 is emulated and slower.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def mixed_precision(device: torch.device, enabled: bool) -> Any:
    """bf16 autocast for the forward pass where the hardware runs it fast, else a no-op."""
    if enabled and bf16_is_fast(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def default_recipe(source: str, image_size: int) -> str:
    """The augmentation recipe a run uses when none is named."""
    if source.split(":", 1)[0] == "digits":
        return "digits"
    return "simclr-cifar" if image_size <= 64 else "simclr"


def augment_for(cfg: Config, spec: EncoderSpec) -> Augment:
    """The run's augmentation: its recipe (named, or picked for the data) at its crop size."""
    recipe = cfg.method.augment or default_recipe(cfg.data.source, spec.image_size)
    return build_augment(recipe, cfg.method.crop_size or spec.image_size, spec.in_channels)


def build_method(cfg: Config, spec: EncoderSpec) -> Method:
    """Encoder + method (its heads and state) for `cfg`, randomly initialised."""
    method_cls = get_method(cfg.method.name)
    method_cfg = method_cls.make_config(cfg.method.params)
    return method_cls(Encoder(spec), method_cfg, augment_for(cfg, spec))


def pretrain(
    cfg: Config, out: str | Path | None = None, *, resume: bool = False, overwrite: bool = False
) -> RunResult:
    """Pretrain an encoder with the method of `cfg`, export it, evaluate it; return the result.

    Runs as one process, or as one of several under torchrun (`torch.distributed`).
    """
    validate(cfg)
    device = resolve_device(cfg.train.device)
    dist = distributed.init_distributed(device.type)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    if cfg.train.batch_size % dist.world_size:
        raise SelfsupError(
            f"train.batch_size {cfg.train.batch_size} must divide evenly over "
            f"{dist.world_size} processes"
        )

    if out is not None:
        check_run_dir(out, resume=resume, overwrite=overwrite)  # before minutes of decoding
    if resume and out is not None:
        saved = RunDir(Path(out)).config
        if saved.is_file():
            cfg = config_from_dict(json.loads(saved.read_text())["config"])
    splits = load_data(
        cfg.data.source,
        download=cfg.data.download,
        skip_corrupt=cfg.data.skip_corrupt,
        image_size=cfg.data.image_size,
    )
    train_data = splits.train
    if len(train_data) < cfg.train.batch_size:
        raise SelfsupError(
            f"train.batch_size {cfg.train.batch_size} is larger than the dataset "
            f"({len(train_data)} images); pass a smaller --batch-size"
        )
    mean, std = channel_stats(train_data.images)
    image_size = train_data.images.shape[-1]
    cifar_stem = cfg.model.cifar_stem if cfg.model.cifar_stem is not None else image_size <= 64
    spec = EncoderSpec(
        cfg.model.backbone, train_data.images.shape[1], image_size, cifar_stem, mean, std
    )

    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg, spec)
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
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.train.compile:
        model = torch.compile(model)
    optimizer = build_optimizer(method, cfg.optim, cfg.train.batch_size)

    run = _open_run_dir(cfg, out, device, resume=resume, overwrite=overwrite)
    state = {"step": 0, "epoch": 0, "batch": 0, "train_seconds": 0.0}
    torch.manual_seed(cfg.train.seed + 1 + dist.rank)  # augmentation draws differ across ranks
    if resume:
        ckpt = load_checkpoint(run.checkpoint)
        method.load_state_dict(ckpt["method"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["progress"]
        set_rng_state(ckpt["rng"][dist.rank])
        if dist.is_main:
            truncate_after(run.metrics, state["step"])

    log = MetricsLog(
        run.metrics if dist.is_main else None, run.tensorboard if dist.is_main else None
    )
    evaluation_data = evaluation_split(splits)
    try:
        _train(
            cfg,
            model,
            method,
            optimizer,
            train_data,
            evaluation_data,
            run,
            state,
            device,
            dist,
            log,
        )
    except KeyboardInterrupt:
        _save_checkpoint(cfg, method, optimizer, state, run, dist)
        raise SelfsupError(
            f"interrupted at step {state['step']}; checkpoint saved. Continue with: "
            f"selfsup pretrain --resume --out {run.root}"
        ) from None
    finally:
        log.close()
    result = RunResult(
        run.root,
        method.encoder,
        epochs=state["step"] / max(_steps_per_epoch(cfg, train_data), 1),
    )
    result.images_per_second = (
        state["step"] * cfg.train.batch_size / max(state["train_seconds"], 1e-9)
    )
    if dist.is_main:
        _finish(cfg, method, splits, run, result, device)
    distributed.barrier()
    return result


def _open_run_dir(
    cfg: Config, out: str | Path | None, device: torch.device, *, resume: bool, overwrite: bool
) -> RunDir:
    if out is None:
        if resume:
            raise SelfsupError("--resume needs --out RUN_DIR naming the run to continue")
        out = default_run_name(cfg.method.name, cfg.data.source)
    if distributed.is_main_process():
        run = prepare_run_dir(out, resume=resume, overwrite=overwrite)
        if not resume:
            run.config.write_text(json.dumps({"config": cfg.to_dict()}, indent=2) + "\n")
            environment = _environment() | {
                "autocast": "bf16" if cfg.train.amp and bf16_is_fast(device) else "fp32"
            }
            run.environment.write_text(json.dumps(environment, indent=2) + "\n")
    distributed.barrier()
    return RunDir(Path(out))


def _environment() -> dict[str, Any]:
    import selfsup

    return {
        "selfsup": getattr(selfsup, "__version__", "unknown"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "world_size": distributed.world_size(),
    }


def _steps_per_epoch(cfg: Config, data: ImageData) -> int:
    return len(data) // cfg.train.batch_size


def _save_checkpoint(
    cfg: Config,
    method: Method,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    run: RunDir,
    dist: distributed.DistInfo,
) -> None:
    rngs = [rng_state()]
    if dist.world_size > 1:
        rngs = [None] * dist.world_size
        torch.distributed.all_gather_object(rngs, rng_state())
    if dist.is_main:
        atomic_save(
            {
                "method": method.state_dict(),
                "optimizer": optimizer.state_dict(),
                "progress": dict(state),
                "rng": rngs,
                "config": cfg.to_dict(),
            },
            run.checkpoint,
        )


def training_step(
    model: nn.Module,
    method: Method,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    memory_format: torch.memory_format,
    amp: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimisation step on a uint8 batch: views on the device, loss, backward, update."""
    views = [v.contiguous(memory_format=memory_format) for v in method.views(x)]
    with amp:
        loss, extras = model(views)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, extras


def _train(
    cfg: Config,
    model: nn.Module,
    method: Method,
    optimizer: torch.optim.Optimizer,
    data: ImageData,
    evaluation_data,
    run: RunDir,
    state: dict[str, Any],
    device: torch.device,
    dist: distributed.DistInfo,
    log: MetricsLog,
) -> None:
    tc = cfg.train
    local_batch = tc.batch_size // dist.world_size
    steps_per_epoch = _steps_per_epoch(cfg, data)
    budget_s = tc.time_budget * 60 if tc.time_budget else None
    total_steps = tc.epochs * steps_per_epoch
    peak_lr = scaled_lr(cfg.optim, tc.batch_size)
    # The whole uint8 dataset sits on the device when it fits (CIFAR-10 is 150 MB), so a batch
    # is one index_select; no DataLoader workers, whose per-sample Python is what caps the
    # anchors and which compete with compute threads on a small CPU.
    images = (
        data.images.to(device)
        if device.type == "cuda" and data.images.numel() < 4 * 2**30
        else data.images
    )
    memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
    amp = mixed_precision(device, tc.amp)
    sampler = DistributedSampler(
        range(len(data)),
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=tc.seed,
        drop_last=True,
    )
    bar = tqdm(
        total=None if budget_s else total_steps,
        initial=state["step"],
        unit="step",
        disable=not (tc.progress and dist.is_main),
        dynamic_ncols=True,
        mininterval=0.5,
    )
    window_start, window_steps = time.perf_counter(), 0

    def progress() -> float:
        if budget_s:
            return state["train_seconds"] / budget_s
        return state["step"] / total_steps

    method.train()
    while progress() < 1.0:
        sampler.set_epoch(state["epoch"])
        order = torch.tensor(list(sampler), dtype=torch.long)
        for b in range(state["batch"], steps_per_epoch):
            t0 = time.perf_counter()
            idx = order[b * local_batch : (b + 1) * local_batch]
            x = images[idx.to(images.device)].to(device, non_blocking=True)
            lr = lr_at(progress(), cfg.optim, peak_lr)
            set_lr(optimizer, lr)
            loss, extras = training_step(model, method, optimizer, x, memory_format, amp)
            method.after_step(progress())
            state["step"] += 1
            state["batch"] = b + 1
            state["train_seconds"] += _elapsed_agreed(t0, dist, budget_s is not None)
            window_steps += 1
            bar.update(1)
            if state["step"] % tc.log_every == 0 or progress() >= 1.0:
                rate = window_steps * tc.batch_size / (time.perf_counter() - window_start)
                # Read the loss only here: .item() waits for the GPU, so not on every step.
                loss_mean = distributed.all_reduce_mean(loss.detach()).item()
                if not math.isfinite(loss_mean):
                    raise SelfsupError(
                        f"the loss became {loss_mean} by step {state['step']}; "
                        "lower --lr or check the data"
                    )
                record = {
                    "kind": "train",
                    "step": state["step"],
                    "epoch": state["epoch"] + (b + 1) / steps_per_epoch,
                    "loss": loss_mean,
                    "lr": lr,
                    "images_per_s": rate,
                } | extras
                log.log(record)
                bar.set_postfix(loss=f"{loss_mean:.3f}", lr=f"{lr:.3g}", img_s=f"{rate:.0f}")
                window_start, window_steps = time.perf_counter(), 0
            if progress() >= 1.0:
                break
        if state["batch"] >= steps_per_epoch:
            state["epoch"] += 1
            state["batch"] = 0
        done = progress() >= 1.0
        if (
            dist.is_main
            and evaluation_data is not None
            and (
                done
                or (tc.eval_every and state["epoch"] % tc.eval_every == 0 and state["batch"] == 0)
            )
        ):
            t_eval = time.perf_counter()
            figures = online_evaluation(method, evaluation_data, cfg, device)
            log.log({"kind": "eval", "step": state["step"], "epoch": state["epoch"]} | figures)
            bar.write(
                f"epoch {state['epoch']}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
            )
            window_start += time.perf_counter() - t_eval
            method.train()
        if done or state["epoch"] % tc.checkpoint_every == 0:
            _save_checkpoint(cfg, method, optimizer, state, run, dist)
        distributed.barrier()
    bar.close()


def _elapsed_agreed(t0: float, dist: distributed.DistInfo, needed: bool) -> float:
    """Seconds of this step; under a time budget, the slowest rank's, so all ranks stop together."""
    elapsed = time.perf_counter() - t0
    if needed and dist.world_size > 1:
        t = torch.tensor([elapsed], dtype=torch.float64)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        elapsed = t.item()
    return elapsed


def _finish(
    cfg: Config, method: Method, splits, run: RunDir, result: RunResult, device: torch.device
) -> None:
    """Export the encoder, evaluate it beside the baselines, write eval.json, print the table."""
    save_encoder(method.encoder, run.root)
    if cfg.eval.protocols:
        result.evaluation = evaluate_encoder_with_baselines(method.encoder, splits, cfg, device)
        run.evaluation.write_text(json.dumps(result.evaluation, indent=2) + "\n")
        print(format_table(result.evaluation))
    if cfg.train.report:
        print(f"report: {write_report(run.root, device=device)}")
    print(
        f"trained {result.epochs:.1f} epochs at {result.images_per_second:.0f} images/s; "
        f"run saved in {run.root}"
    )
