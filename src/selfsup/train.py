"""The one training loop: batches of the method's fields, views, loss, step, schedule, logs.

It names no modality and no method: it takes a `Method`, a `BatchSource` (the data set in
memory as a dict of tensors with one row per sample, `MemoryBatches`, or a stream of shards)
and the run's settings. `selfsup.run` sets a run up around it (data,
encoder, run directory, resume) and evaluates afterwards.

Stopping is always at a step boundary: Ctrl-C (SIGINT) only sets a flag, the step in flight
finishes and is counted, a checkpoint is written, and `TrainingInterrupted` is raised, so that
`--resume` continues exactly. Under torchrun the ranks agree on the flag (and on the clock of a
time budget) with one small all-reduce per step.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from selfsup import distributed
from selfsup.checkpoint import atomic_save, rng_state
from selfsup.config import Config
from selfsup.devices import mixed_precision, synchronize
from selfsup.errors import SelfsupError
from selfsup.evaluate.geometry import collapse_stats, uniformity
from selfsup.methods import Method
from selfsup.metrics import MetricsLog
from selfsup.optim import lr_at, scaled_lr, set_lr
from selfsup.rundir import RunDir

Batch = dict[str, torch.Tensor]


class TrainingInterrupted(Exception):
    """Training stopped on request (Ctrl-C) at a step boundary, after writing a checkpoint."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of the current epoch already done
    train_seconds: float = 0.0  # wall clock spent in steps (not in evaluation or the first step)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch,
            "train_seconds": self.train_seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        return cls(**{k: d[k] for k in ("step", "epoch", "batch", "train_seconds")})


class BatchSource(Protocol):
    """Where the loop's batches come from: this rank's batches of an epoch from a position.
    `position` is what the checkpoint records of it; `restore` checks it on resume."""

    steps_per_epoch: int
    skipped: int  # undecodable samples stepped over so far (--skip-corrupt); 0 in memory

    def batches(self, epoch: int, start: int) -> Iterator[Batch]:
        """This rank's batches `start`, `start` + 1, ... of `epoch`, on the device."""
        ...

    def position(self, epoch: int, batch: int) -> dict[str, Any]: ...

    def restore(self, position: dict[str, Any] | None) -> None: ...


class MemoryBatches:
    """The data set in memory (field -> (N, ...) tensor, only the method's inputs): each epoch a
    seeded permutation cut into whole global batches, each rank its every world_size-th sample."""

    def __init__(
        self,
        data: dict[str, torch.Tensor],
        global_batch: int,
        dist: distributed.DistInfo,
        seed: int,
        device: torch.device,
    ):
        self.data, self.device = data, device
        self.skipped = 0  # decoded before training: the loader counted its own skips
        num_samples = len(next(iter(data.values())))
        self.steps_per_epoch = steps_per_epoch(num_samples, global_batch)
        self.local_batch = global_batch // dist.world_size
        self.sampler = DistributedSampler(
            range(num_samples),
            num_replicas=dist.world_size,
            rank=dist.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )

    def batches(self, epoch: int, start: int) -> Iterator[Batch]:
        self.sampler.set_epoch(epoch)
        order = epoch_order(self.sampler)
        for b in range(start, self.steps_per_epoch):
            idx = order[b * self.local_batch : (b + 1) * self.local_batch]
            yield batch_of(self.data, idx, self.device)

    def position(self, epoch: int, batch: int) -> dict[str, Any]:
        return {}  # the epoch and batch in Progress say it all

    def restore(self, position: dict[str, Any] | None) -> None:
        pass


@dataclass
class Loop:
    """Everything the loop needs, built by `selfsup.run`."""

    cfg: Config
    model: nn.Module  # the method, possibly wrapped in DDP or torch.compile
    method: Method
    optimizers: dict[str, torch.optim.Optimizer]  # one per update of the method, by name
    data: BatchSource  # the method's fields, batch by batch
    run: RunDir
    device: torch.device
    dist: distributed.DistInfo
    log: MetricsLog
    progress: Progress = field(default_factory=Progress)
    # The periodic check on held-out data; the curve's last point is the run's (`run.finish`).
    evaluate: Callable[[], dict[str, float]] | None = None


def steps_per_epoch(num_samples: int, global_batch: int) -> int:
    """Full global batches in one pass over the data (the last partial batch is dropped)."""
    return num_samples // global_batch


def batch_of(data: dict[str, torch.Tensor], index: torch.Tensor, device: torch.device) -> Batch:
    """The rows `index` of every field, on `device`; "index" itself when the data holds it."""
    batch = {}
    for name, values in data.items():
        if name == "index":
            batch[name] = index.to(device)
        else:
            batch[name] = values[index.to(values.device)].to(device, non_blocking=True)
    return batch


def epoch_order(sampler: DistributedSampler) -> torch.Tensor:
    """This rank's sample order for the sampler's epoch: exactly `list(sampler)` (seeded
    randperm, cut to whole global batches, every world_size-th from the rank), built as a
    tensor: a list of Python ints costs about 36 bytes a sample, 1 GB for a 30M-line corpus."""
    g = torch.Generator()
    g.manual_seed(sampler.seed + sampler.epoch)
    order = torch.randperm(len(sampler.dataset), generator=g)[: sampler.total_size]  # type: ignore[arg-type]
    return order[sampler.rank : sampler.total_size : sampler.num_replicas].clone()


def training_step(
    model: nn.Module,
    method: Method,
    optimizers: dict[str, torch.optim.Optimizer],
    batch: Batch,
    amp: Any,
    plan: tuple[str, ...],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training step: views on the device, then for each update of `plan` in order its
    loss, backward and its optimiser's step. With several optimisers the step's loss is the sum
    of its updates' losses, and each is logged as `loss_NAME`."""
    views = method.views(batch)
    total: torch.Tensor | None = None
    figures: dict[str, torch.Tensor] = {}
    for update in plan:
        with amp:
            loss, extras = model(views, batch, update)
        optimizer = optimizers[update]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if len(optimizers) > 1:
            extras = {f"loss_{update}": loss.detach(), **extras}
        total = loss if total is None else total + loss.detach()
        figures |= extras
    assert total is not None, "a method's plan names no update"
    return total, figures


@contextmanager
def stop_on_sigint() -> Iterator[dict[str, bool]]:
    """A flag that SIGINT sets instead of raising; a second Ctrl-C interrupts at once."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        flag["stop"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            "\nselfsup: stopping after this step and saving a checkpoint "
            "(Ctrl-C again to quit at once)",
            flush=True,
        )

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _agree(elapsed: float, stop: bool, loop: Loop) -> tuple[float, bool]:
    """The slowest rank's step time and whether any rank asked to stop (one all-reduce)."""
    if loop.dist.world_size == 1:
        return elapsed, stop
    t = torch.tensor([elapsed, float(stop)], dtype=torch.float64, device=loop.device)
    if t.device.type == "cuda":
        t = t.float()  # NCCL reduces float64 too, but keep the tensor small and common
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t[0]), bool(t[1] > 0)


def save_checkpoint(loop: Loop) -> None:
    """Model, method state, optimizer, progress and every rank's RNG state, written atomically."""
    rngs = [rng_state()]
    if loop.dist.world_size > 1:
        rngs = [None] * loop.dist.world_size
        torch.distributed.all_gather_object(rngs, rng_state())
    if loop.dist.is_main:
        atomic_save(
            {
                "method": loop.method.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in loop.optimizers.items()},
                "progress": loop.progress.to_dict(),
                "rng": rngs,
                "config": loop.cfg.to_dict(),
                "data": loop.data.position(loop.progress.epoch, loop.progress.batch),
            },
            loop.run.checkpoint,
        )


def _monitor(method: Method) -> dict[str, float]:
    """Collapse monitor on the embedding the method watches (the normalised projector output)."""
    z = method.watched
    if z is None or z.dim() != 2 or len(z) < 2:
        return {}
    stats = collapse_stats(z.float())
    return {
        "proj_std": stats["std"],
        "proj_std_reference": stats["std_reference"],
        "proj_effective_rank": stats["effective_rank"],
        "proj_uniformity": uniformity(z.float()),
    }


def train(loop: Loop) -> None:
    """Run the loop until the epochs or the time budget are spent; checkpoints as it goes."""
    cfg, tc, state, dist = loop.cfg, loop.cfg.train, loop.progress, loop.dist
    per_epoch = loop.data.steps_per_epoch
    budget_s = tc.time_budget * 60 if tc.time_budget else None
    total_steps = tc.epochs * per_epoch
    peak_lr = scaled_lr(cfg.optim, tc.batch_size)
    amp = mixed_precision(loop.device, tc.amp)
    bar = tqdm(
        total=None if budget_s else total_steps,
        initial=state.step,
        unit="step",
        disable=not (tc.progress and dist.is_main),
        dynamic_ncols=True,
        mininterval=0.5,
    )

    def progress() -> float:
        if budget_s:
            return min(state.train_seconds / budget_s, 1.0)
        return min(state.step / total_steps, 1.0)

    # The budget clock starts after this session's first step (compilation, CUDA start-up and
    # allocator warm-up are not charged to it) and stops during evaluation.
    clock: float | None = None
    window_start, window_steps = time.perf_counter(), 0
    loop.method.train()
    with stop_on_sigint() as flag:
        while progress() < 1.0:
            batches = loop.data.batches(state.epoch, state.batch)
            for b, batch in enumerate(batches, start=state.batch):
                lr = lr_at(progress(), cfg.optim, peak_lr)
                for optimizer in loop.optimizers.values():
                    set_lr(optimizer, lr, progress())
                plan = loop.method.plan(progress())
                loss, extras = training_step(
                    loop.model, loop.method, loop.optimizers, batch, amp, plan
                )
                state.step += 1
                state.batch = b + 1
                if clock is None:
                    synchronize(loop.device)
                    elapsed, clock = 0.0, time.perf_counter()
                else:
                    now = time.perf_counter()
                    elapsed, clock = now - clock, now
                elapsed, stop = _agree(elapsed, flag["stop"], loop)
                state.train_seconds += elapsed
                loop.method.after_step(progress())
                window_steps += 1
                bar.update(1)
                # the first and the last step are always logged: a run shorter than log_every
                # steps still draws a line from its start to its end
                first = state.step == 1
                if state.step % tc.log_every == 0 or first or progress() >= 1.0 or stop:
                    logged = _log_train(
                        loop, loss, extras, lr, b + 1, per_epoch, window_start, window_steps
                    )
                    bar.set_postfix(loss=f"{logged:.3f}", lr=f"{lr:.3g}")
                    window_start, window_steps = time.perf_counter(), 0
                if stop:
                    save_checkpoint(loop)
                    bar.close()
                    raise TrainingInterrupted(state.step)
                if progress() >= 1.0:
                    break
            batches.close()  # a stream's workers stop now, not when collected
            if state.batch >= per_epoch:
                state.epoch += 1
                state.batch = 0
            done = progress() >= 1.0
            periodic = tc.eval_every and state.epoch % tc.eval_every == 0 and state.batch == 0
            if loop.evaluate is not None and dist.is_main and periodic and not done:
                figures = loop.evaluate()
                loop.log.log({"kind": "eval", "step": state.step, "epoch": state.epoch} | figures)
                bar.write(
                    f"epoch {state.epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
                )
                loop.method.train()
            if done or state.epoch % tc.checkpoint_every == 0:
                save_checkpoint(loop)
            distributed.barrier()
            synchronize(loop.device)
            if clock is not None:
                clock = time.perf_counter()  # evaluation and checkpoints are not training time
                window_start = clock
    bar.close()


def _log_train(
    loop: Loop,
    loss: torch.Tensor,
    extras: dict[str, torch.Tensor],
    lr: float,
    batches_done: int,
    per_epoch: int,
    window_start: float,
    window_steps: int,
) -> float:
    """One metrics line: loss (averaged over ranks), lr, speed, the method's figures, collapse.
    Returns the logged loss."""
    state, tc = loop.progress, loop.cfg.train
    rate = window_steps * tc.batch_size / max(time.perf_counter() - window_start, 1e-9)
    # The loss is read only here: .item() waits for the device, so not on every step.
    loss_mean = distributed.all_reduce_mean(loss.detach()).item()
    if not math.isfinite(loss_mean):
        raise SelfsupError(
            f"the loss became {loss_mean} by step {state.step}; lower --lr or check the data"
        )
    figures = {k: float(v) for k, v in extras.items()}
    record = {
        "kind": "train",
        "step": state.step,
        "epoch": state.epoch + batches_done / per_epoch,
        "loss": loss_mean,
        "lr": lr,
        "samples_per_s": rate,
    }
    loop.log.log(record | figures | _monitor(loop.method))
    return loss_mean
