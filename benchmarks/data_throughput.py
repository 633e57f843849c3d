"""Training images/s of convnet SimCLR on CIFAR-10 from each data path: in memory (an .npz
loaded as one tensor), the image folder (read from its decode cache, a store), a memory-mapped
store of the same images, and WebDataset shards of the JPEGs streamed and decoded by workers.

Run by hand; prints a table. Every run is a fresh process that trains `--warmup` untimed steps,
then `--steps` timed ones; the sources take turns (`--repeats` rounds, interleaved) and the
table shows the median, and each source beside the in-memory path. The store is written once
from the same decoded images (train rows then test rows), in a temp dir or `--store`.

    python benchmarks/data_throughput.py                      # 3 rounds of 50 steps, batch 256
    python benchmarks/data_throughput.py --repeats 5 --steps 100
    python benchmarks/data_throughput.py --repeats 1 --steps 2 --warmup 1 --batch-size 64  # runs?

Another data path adds one entry to `SOURCES`: a name and a function that returns its
`--data` spec (writing whatever it needs into the scratch folder it is given).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from store_memory import CIFAR_JPG, cpu_name, train_steps, write_rows


def memory_source(scratch: Path) -> str:
    """The decoded images as an .npz, loaded whole into one in-memory tensor (`npy:`)."""
    from selfsup.data import load_data

    path = scratch / "cifar10.npz"
    if not path.is_file():
        splits = load_data(f"folder:{CIFAR_JPG}")
        np.savez(
            path,
            images=splits.train.images.numpy(),
            labels=splits.train.labels.numpy(),
            test_images=splits.test.images.numpy(),
            test_labels=splits.test.labels.numpy(),
        )
    return f"npy:{path}"


def folder_source(scratch: Path) -> str:
    """The image folder, read from its decode cache (itself a store under the cache folder)."""
    return f"folder:{CIFAR_JPG}"


def store_source(scratch: Path) -> str:
    """The same decoded images (train and test) written as a store."""
    from selfsup.data import load_data

    folder = scratch / "cifar10-store"
    if not (folder / "index.json").is_file():
        splits = load_data(f"folder:{CIFAR_JPG}")
        train, test = splits.train, splits.test
        write_rows(
            folder,
            [train.images.numpy(), test.images.numpy()],
            np.concatenate([train.labels.numpy(), test.labels.numpy()]),
            list(train.classes),
            len(test),
            f"folder:{CIFAR_JPG}",
        )
    return f"store:{folder}"


def wds_source(scratch: Path) -> str:
    """The training JPEGs as they are (not re-encoded) in WebDataset shards of 5,000, streamed
    and decoded by data.workers (2) DataLoader processes."""
    import webdataset as wds

    folder = scratch / "cifar10-shards"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        train = CIFAR_JPG / "train"
        classes = sorted(p.name for p in train.iterdir() if p.is_dir())
        files = [(f, y) for y, c in enumerate(classes) for f in sorted((train / c).glob("*.jpg"))]
        order = np.random.default_rng(0).permutation(len(files))  # shards of mixed classes
        pattern = str(folder / "train-%06d.tar")
        with wds.ShardWriter(pattern, maxcount=5000, verbose=0) as sink:
            for i in order:
                file, label = files[i]
                sink.write({"__key__": f"{i:06d}", "jpg": file.read_bytes(), "cls": str(label)})
    return f"wds:{folder}"


# name -> a function of the scratch folder returning the `--data` spec; "memory" is the baseline
SOURCES: dict[str, Callable[[Path], str]] = {
    "memory": memory_source,
    "folder": folder_source,
    "store": store_source,
    "wds": wds_source,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--sources", default=",".join(SOURCES), help="comma-separated names")
    p.add_argument("--backbone", default="convnet", help="resnet18 for the GPU check")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--scratch", type=Path, help="where stores are written (default: a temp dir)")
    args = p.parse_args()
    if not CIFAR_JPG.is_dir():
        raise SystemExit(f"{CIFAR_JPG} is missing: CIFAR-10 as JPEG folders (train/, test/)")
    names = args.sources.split(",")
    unknown = set(names) - set(SOURCES)
    if unknown:
        raise SystemExit(f"unknown sources {sorted(unknown)}; choose from {list(SOURCES)}")
    with tempfile.TemporaryDirectory(prefix="selfsup-throughput-") as tmp:
        scratch = args.scratch or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        specs = {name: SOURCES[name](scratch) for name in names}
        rates: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.repeats):
            for name in names:  # interleaved: a slow minute on the machine hits every source
                r = train_steps(
                    specs[name],
                    steps=args.steps,
                    warmup=args.warmup,
                    batch_size=args.batch_size,
                    threads=args.threads,
                    backbone=args.backbone,
                    device=args.device,
                )
                rates[name].append(r["images_per_s"])
    print(
        f"cpu: {cpu_name()}, {os.cpu_count()} cores, {args.threads} torch threads; "
        f"device {args.device}; {args.backbone} SimCLR, batch {args.batch_size}, "
        f"{args.steps} timed steps after {args.warmup}, "
        f"median of {args.repeats} interleaved runs"
    )
    base = statistics.median(rates["memory"]) if "memory" in rates else None
    print("| source | images/s (median) | runs | vs memory |")
    print("|---|---|---|---|")
    for name in names:
        median = statistics.median(rates[name])
        runs = ", ".join(f"{x:.0f}" for x in rates[name])
        ratio = f"{median / base:.2f}x" if base else "-"
        print(f"| {name} | {median:.0f} | {runs} | {ratio} |")


if __name__ == "__main__":
    main()
