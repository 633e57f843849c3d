"""Training on an image store larger than the memory given to the run: the process's own
(anonymous) memory stays bounded, the store's pages live in the page cache.

Run by hand; prints a table. It writes a store of `--multiple` times the memory limit (synthetic
images, or CIFAR-10's training JPEGs decoded once and repeated), then trains convnet SimCLR on it
for `--steps` steps in a child process whose private writable memory is capped with
RLIMIT_DATA (`--limit-gib`; it counts private writable mappings, about 0.9 GiB of them once
torch is imported on a CPU): the store is mapped read-only from a file, so it does not count
against that limit, while anything that copied it into the process would fail. The child
reports RssAnon (the process's own memory) and RssFile (mapped file pages) at start, peak and
end, and steps/s.

    python benchmarks/store_memory.py                       # 2 GiB limit, 8 GiB store
    python benchmarks/store_memory.py --source cifar        # CIFAR-10 repeated (data/cifar10-jpg)
    python benchmarks/store_memory.py --multiple 0.05 --steps 3   # a quick check that it runs

Why RLIMIT_DATA and not a cgroup: on the machine this was written on, systemd-run cannot start a
scope (no systemd as init) and the memory cgroup the process runs in belongs to the machine's
own supervisor, so "memory given to the run" is a cap on the process's private writable memory
(what RssAnon measures), not on the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from selfsup.devices import cpu_model

ROOT = Path(__file__).resolve().parent.parent
CIFAR_JPG = ROOT / "data" / "cifar10-jpg"

# The child: caps its data segment, counts training steps and stops the run after the last one
# (Ctrl-C at a step boundary, as a user would), watching its own RssAnon and RssFile meanwhile.
CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, threading, time
    args = json.loads(sys.argv[1])
    if args["limit"]:
        resource.setrlimit(resource.RLIMIT_DATA, (args["limit"], args["limit"]))
    import torch
    torch.set_num_threads(args["threads"])
    import selfsup, selfsup.train
    from selfsup.errors import SelfsupError

    def status():
        out = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmData"):
                out[key] = int(value.split()[0]) * 1024
        return out

    start = status()
    peak = dict(start)
    running = True

    def watch():
        while running:
            for key, value in status().items():
                peak[key] = max(peak[key], value)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    times = []
    original = selfsup.train.training_step

    def step(*a, **k):
        out = original(*a, **k)
        times.append(time.perf_counter())
        if len(times) == args["warmup"] + args["steps"]:
            signal.raise_signal(signal.SIGINT)
        return out

    selfsup.train.training_step = step
    cfg = selfsup.make_config(**{
        "data.source": args["source"], "method.name": "simclr", "model.backbone": args["backbone"],
        "train.device": args["device"],
        "train.batch_size": args["batch_size"], "train.epochs": 1000, "train.eval_every": 0,
        "train.checkpoint_every": 1000, "train.log_every": 1000000, "eval.protocols": "",
        "train.report": False, "train.progress": False, "train.seed": args["seed"],
    })
    try:
        selfsup.pretrain(cfg, args["out"], overwrite=True)
    except SelfsupError as e:
        if "interrupted" not in str(e):
            raise
    running = False
    watcher.join()
    timed = times[args["warmup"]:]
    seconds = timed[-1] - times[args["warmup"] - 1] if args["warmup"] else timed[-1] - timed[0]
    n = len(timed) if args["warmup"] else len(timed) - 1
    print("RESULT " + json.dumps({
        "start": start, "peak": peak, "end": status(), "steps": n,
        "images_per_s": n * args["batch_size"] / seconds, "steps_per_s": n / seconds,
    }))
    """
)


def train_steps(
    source: str,
    *,
    steps: int,
    warmup: int = 2,
    batch_size: int = 256,
    threads: int = 2,
    limit: int = 0,
    seed: int = 0,
    backbone: str = "convnet",
    device: str = "auto",
) -> dict:
    """Train SimCLR (convnet unless `backbone` says) on `source` for `warmup` + `steps` steps
    in a fresh process (capped at `limit` bytes of private writable memory when set); its
    memory figures and speed."""
    with tempfile.TemporaryDirectory() as tmp:
        args = {
            "source": source,
            "steps": steps,
            "warmup": warmup,
            "batch_size": batch_size,
            "threads": threads,
            "limit": limit,
            "seed": seed,
            "backbone": backbone,
            "device": device,
            "out": str(Path(tmp) / "run"),
        }
        env = os.environ | {"OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(
            f"the training process failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def write_rows(
    folder: Path,
    blocks,
    labels: np.ndarray,
    classes: list[str],
    n_test: int,
    source: str,
) -> None:
    """A store written block by block (any iterable of (n, C, S, S) uint8 arrays), so that a
    store larger than memory never is in memory; its last `n_test` rows are the test split."""
    from selfsup.data.store import (
        IMAGES_FILE,
        LABELS_FILE,
        StoreIndex,
        write_index,
    )

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").unlink(missing_ok=True)  # unfinished until the index is written
    shape = None
    n = 0
    with open(folder / IMAGES_FILE, "wb") as f:
        for block in blocks:
            shape = block.shape[1:]
            block.tofile(f)
            n += len(block)
    np.save(folder / LABELS_FILE, labels.astype(np.int64))
    assert shape is not None and len(labels) == n
    index = StoreIndex(
        shape=(n, *map(int, shape)),
        splits={"train": (0, n - n_test), "test": (n - n_test, n)},
        source=source,
        fingerprint=f"benchmark:{source}:{n}",
        labelled=True,
        classes=classes,
    )
    write_index(folder, index)  # last: a store without its index is unfinished


def cifar_images(size: int = 32) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR-10's training JPEGs (data/cifar10-jpg/train), decoded once through selfsup."""
    from selfsup.data import load_data

    train = load_data(f"folder:{CIFAR_JPG}", image_size=size).train
    return train.images.numpy(), train.labels.numpy(), list(train.classes)


def build_store(folder: Path, nbytes: int, source: str, size: int, seed: int = 0) -> None:
    """A store of about `nbytes` of pixels: synthetic RGB images (seeded noise around a class
    colour), or CIFAR-10 repeated."""
    row = 3 * size * size
    n = max(nbytes // row, 20)
    if source == "cifar":
        images, labels, classes = cifar_images(size)
        reps = -(-n // len(images))
        blocks = (images for _ in range(reps))
        labels = np.tile(labels, reps)
        n = reps * len(images)
    else:
        classes = [f"class{i}" for i in range(10)]
        labels = np.arange(n, dtype=np.int64) % 10
        rng = np.random.default_rng(seed)

        def synthetic():
            for first in range(0, n, 4096):
                y = labels[first : first + 4096]
                x = rng.integers(0, 128, size=(len(y), 3, size, size), dtype=np.uint8)
                yield x + (y * 12).astype(np.uint8)[:, None, None, None]

        blocks = synthetic()
    write_rows(folder, blocks, labels, classes, max(n // 10, 10), f"benchmark-{source}")


def mib(x: int) -> str:
    return f"{x / 2**20:,.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--limit-gib", type=float, default=2.0, help="RLIMIT_DATA of the run (GiB)")
    p.add_argument("--multiple", type=float, default=4.0, help="store size / the limit")
    p.add_argument("--source", choices=["synthetic", "cifar"], default="synthetic")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)  # 256 needs more than 2 GiB of heap
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--store", type=Path, help="where to write the store (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep a store written in a temp dir")
    args = p.parse_args()
    limit = int(args.limit_gib * 2**30)
    tmp = None
    folder = args.store
    if folder is None:
        tmp = tempfile.mkdtemp(prefix="selfsup-store-memory-")
        folder = Path(tmp) / "store"
    build_store(folder, int(limit * args.multiple), args.source, args.image_size)
    store_bytes = (folder / "images.u8").stat().st_size
    r = train_steps(
        f"store:{folder}",
        steps=args.steps,
        batch_size=args.batch_size,
        threads=args.threads,
        limit=limit,
    )
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; {args.threads} torch threads")
    rows = [
        ("store (MiB)", mib(store_bytes)),
        ("RLIMIT_DATA of the run (MiB)", mib(limit)),
        ("store / limit", f"{store_bytes / limit:.1f}x"),
        (
            "RssAnon start / peak / end (MiB)",
            " / ".join(mib(r[k]["RssAnon"]) for k in ("start", "peak", "end")),
        ),
        ("RssAnon growth, peak - start (MiB)", mib(r["peak"]["RssAnon"] - r["start"]["RssAnon"])),
        ("VmData start / peak (MiB)", f"{mib(r['start']['VmData'])} / {mib(r['peak']['VmData'])}"),
        (
            "RssFile start / peak / end (MiB)",
            " / ".join(mib(r[k]["RssFile"]) for k in ("start", "peak", "end")),
        ),
        (f"steps/s (batch {args.batch_size}, {r['steps']} steps)", f"{r['steps_per_s']:.2f}"),
        ("images/s", f"{r['images_per_s']:.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'':{width}} | convnet SimCLR on store:{args.source} |")
    print(f"|{'-' * (width + 2)}|---|")
    for k, v in rows:
        print(f"| {k:{width}} | {v} |")
    if tmp is not None and not args.keep:
        import shutil

        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
