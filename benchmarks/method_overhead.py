"""Every image method's training step beside the bare backbone's forward and backward on the
same views, and where the step's time goes.

Run by hand; prints a table. Each method is built as a run builds it (`run.build_method`: the
method's published augmentation, its optimiser from `Method.optimiser`) on synthetic uint8
CIFAR-size images (3 x 32 x 32, 50,000 of them as CIFAR-10's training set: the number only
matters to a memory bank). One step is what the training loop does: views (augmentation), loss,
backward, optimizer step, `after_step`. The bare reference is a copy of the method's encoder
doing forward + backward on exactly the inputs the method's trainable encoder received in that
step (recorded by a hook: the same number and sizes of crops, multi-crop's small ones included;
a method that calls its encoder other than through `forward` falls back to its image views).
Method and bare steps alternate, so that load from other processes hits both; the medians are
compared.

Columns: `step` and `bare` are median seconds per step, `ratio` their quotient; then the
step's parts (median seconds): `aug` the views, `enc` the trainable encoder's forward, `teach`
forwards of encoders without gradient (a momentum teacher), `head+loss` the rest of the
forward, `bwd` the backward, `opt` the optimizer step, `after` `after_step`; `syncs` counts
the host reads of a device value in one step outside the optimizer's step
(`aten::_local_scalar_dense`: `.item()`, `float(t)`, `bool(t)`), which on a GPU would each
wait for the device. (The augmentation's CPU path also gathers random subsets by `nonzero`,
which costs nothing on the CPU; off the CPU it masks instead: tests/augment run it on the
'meta' device. On the CPU every tensor is a host tensor: a read counted here may be of one that
a method keeps on the host on purpose, as the metric losses' drawn negatives.)

    python benchmarks/method_overhead.py                                # all image methods
    python benchmarks/method_overhead.py --methods instdisc,dino,swav --steps 5 --batch 128
    python benchmarks/method_overhead.py --backbone convnet --batch 256
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from selfsup.config import Config
from selfsup.methods import available_methods, get_method
from selfsup.modalities import get_modality
from selfsup.optim import build_optimizer, resolve_optim, set_lr
from selfsup.run import build_method, training_fields

# Methods that need a transformer backbone (as benchmarks/methods.py runs them).
BACKBONE_FOR = {"mae": "vit-mini", "autoregressive": "vit-mini-causal"}
SYNC_OPS = ("aten::_local_scalar_dense",)
PARTS = ("aug", "enc", "teach", "head+loss", "bwd", "opt", "after")


def image_methods(supervised: bool) -> list[str]:
    """Registered methods that train on images (those reading labels only when asked)."""
    names = []
    for name in available_methods():
        cls = get_method(name)
        if "image" in cls.modalities and (supervised or "label" not in cls.inputs):
            names.append(name)
    return names


class Clock:
    """Seconds spent per named part of the current step."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)

    def timed(self, part: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.parts[part] += time.perf_counter() - t0
        return out


def encoders_of(method: nn.Module) -> list[nn.Module]:
    """The method's encoder and every module of the same class (momentum teachers)."""
    kind = type(method.encoder)
    return [m for m in method.modules() if type(m) is kind]


def instrument(method: nn.Module, clock: Clock, record: list[torch.Tensor] | None) -> None:
    """Time each encoder forward (trainable ones as "enc", the rest as "teach"); append the
    trainable encoder's inputs to `record` while it is not None."""
    for module in encoders_of(method):
        forward = module.forward

        def timed_forward(x: Any, *args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            trainable = torch.is_grad_enabled() and _forward.__self__ is method.encoder
            if trainable and record is not None and isinstance(x, torch.Tensor):
                record.append(x.detach().clone())
            return clock.timed("enc" if trainable else "teach", _forward, x, *args, **kwargs)

        module.forward = timed_forward  # instance attribute: nn.Module.__call__ calls it


class _Sized(SimpleNamespace):
    """The synthetic data set, with the length `training_fields` asks for."""

    def __len__(self) -> int:
        return len(self.images)


def build(name: str, args: argparse.Namespace, images: torch.Tensor) -> tuple[Any, ...]:
    """The method as a run builds it, its optimiser, and its training fields."""
    cfg = Config()
    cfg.method.name = name
    cfg.model.backbone = BACKBONE_FOR.get(name, args.backbone) if args.vit_auto else args.backbone
    cls = get_method(name)
    optim, _ = resolve_optim(cfg.optim, cls.optimiser, name)
    modality = get_modality("image")
    labels = torch.randint(0, 10, (len(images),))
    data = _Sized(images=images, labels=labels, name="synthetic", channel_groups=())
    torch.manual_seed(0)
    method = build_method(cfg, modality, data)
    method.bind_data(len(images))
    method.to(memory_format=torch.channels_last)
    method.train()
    fields = training_fields(method, modality, data)
    optimizer = build_optimizer(method.param_groups(), optim, args.batch)
    set_lr(optimizer, optim.lr * args.batch / 256, 0.5)
    return method, optimizer, fields


def batches(fields: dict[str, torch.Tensor], batch: int):
    """Random batches of the training fields, as the loop draws them."""
    n = len(next(iter(fields.values())))
    while True:
        idx = torch.randperm(n)[:batch]
        yield {k: (idx if k == "index" else v[idx]) for k, v in fields.items()}


def count_syncs(step: Callable[[], Any]) -> int:
    """Host reads of device values in one call of `step`, outside the optimizer's step (torch's
    optimizers keep their step counters on the host unless `capturable`: not a device read)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.events()
    optimizer = [e.time_range for e in events if e.name.startswith("Optimizer.step")]
    return sum(
        1
        for e in events
        if e.name in SYNC_OPS and not any(r.start <= e.time_range.start <= r.end for r in optimizer)
    )


def measure(name: str, args: argparse.Namespace, images: torch.Tensor) -> dict[str, Any]:
    method, optimizer, fields = build(name, args, images)
    clock, record = Clock(), []
    instrument(method, clock, record)
    draw = batches(fields, args.batch)
    steps = [0]

    def method_step() -> None:
        batch = next(draw)
        views = clock.timed("aug", method.views, batch)
        loss, _ = clock.timed("fwd", method, views, batch)
        optimizer.zero_grad(set_to_none=True)
        clock.timed("bwd", loss.backward)
        clock.timed("opt", optimizer.step)
        steps[0] += 1
        clock.timed("after", method.after_step, min(0.5 + steps[0] / 1e4, 1.0))

    # One step records the trainable encoder's inputs: the bare backbone's work.
    method_step()
    inputs = list(record)
    record.clear()
    note = ""
    if not inputs:  # the encoder is called through another method: its image views instead
        views = method.views(next(draw))
        inputs = [v for v in views if isinstance(v, torch.Tensor) and v.dim() == 4]
        inputs = [v.float() if not v.is_floating_point() else v for v in inputs]
        note = "bare on the image views"
    bare_encoder = copy.deepcopy(method.encoder)
    bare_encoder.__dict__.pop("forward", None)  # its class's forward, not the timed one
    bare_encoder.requires_grad_(True).train()

    def bare_step() -> None:
        bare_encoder.zero_grad(set_to_none=True)
        loss = sum(bare_encoder(x).float().sum() for x in inputs)
        loss.backward()

    bare_step()
    syncs = count_syncs(method_step)
    step_times, bare_times, parts = [], [], defaultdict(list)
    for i in range(args.warmup + args.steps):
        clock.parts.clear()
        t0 = time.perf_counter()
        method_step()
        t1 = time.perf_counter()
        bare_step()
        t2 = time.perf_counter()
        if i >= args.warmup:
            step_times.append(t1 - t0)
            bare_times.append(t2 - t1)
            for part, seconds in clock.parts.items():
                parts[part].append(seconds)
    med = {part: statistics.median(v) for part, v in parts.items()}
    med["head+loss"] = med.get("fwd", 0.0) - med.get("enc", 0.0) - med.get("teach", 0.0)
    step, bare = statistics.median(step_times), statistics.median(bare_times)
    crops = ", ".join(f"{x.shape[0]}x{x.shape[-1]}" for x in inputs)
    return {
        "method": name,
        "backbone": method.encoder.spec.backbone if hasattr(method.encoder, "spec") else "?",
        "step": step,
        "bare": bare,
        "ratio": step / bare,
        "syncs": syncs,
        "crops": crops + (f" ({note})" if note else ""),
        **{part: med.get(part, 0.0) for part in PARTS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="", help="comma-separated (default: every image one)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument(
        "--no-vit-auto",
        dest="vit_auto",
        action="store_false",
        help="run MAE and the autoregressive ViT on --backbone too (default: vit-mini)",
    )
    parser.add_argument(
        "--samples", type=int, default=50000, help="synthetic training set (a memory bank's rows)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--supervised", action="store_true", help="include SupCon")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.methods.split(",") if args.methods else image_methods(args.supervised)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.samples, 3, 32, 32), dtype=torch.uint8)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"{args.steps} timed steps after {args.warmup}, synthetic 32x32 uint8 images"
    )
    header = f"{'method':20s} {'backbone':16s} {'step':>7s} {'bare':>7s} {'ratio':>6s} "
    header += " ".join(f"{p:>9s}" for p in PARTS) + f" {'syncs':>5s}  crops (bare inputs)"
    print(header, flush=True)
    for name in names:
        r = measure(name, args, images)
        line = f"{r['method']:20s} {r['backbone']:16s} {r['step']:7.3f} {r['bare']:7.3f} "
        line += f"{r['ratio']:6.2f} " + " ".join(f"{r[p]:9.3f}" for p in PARTS)
        print(line + f" {r['syncs']:5d}  {r['crops']}", flush=True)


if __name__ == "__main__":
    main()
