"""WebDataset streaming vs in memory: convnet SimCLR on the CIFAR-10 JPEGs, images/s.

Run by hand, on a quiet machine, in one sitting:

    PYTHONPATH=src python benchmarks/wds_throughput.py            # all 50,000, 2 epochs
    PYTHONPATH=src python benchmarks/wds_throughput.py --images 1024 --per-shard 256 \\
        --epochs 1 --batch-size 128                               # a check that it runs

The benchmark writes the training JPEGs of data/cifar10-jpg (as they are, not re-encoded, with
their class as `cls`) into shards with webdataset's ShardWriter, and the same images decoded
into an .npz. It trains the same run on both: `npy:FILE` (decoded once, in memory) and
`wds:DIR` (streamed, decoded in data.workers DataLoader processes). images/s is the run's own
figure (steps x batch / training seconds: the first step and evaluation are not counted; a
stream's worker start-up at each epoch is). The target is streaming >= 0.8 x in memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
import webdataset as wds

import selfsup
from selfsup.data.decode import decode_image_file

ROOT = Path(__file__).resolve().parent.parent
JPEGS = ROOT / "data" / "cifar10-jpg" / "train"


def cifar_files(limit: int | None) -> list[tuple[Path, int]]:
    """(file, class) of the training JPEGs, the classes interleaved so that any prefix is
    balanced."""
    classes = sorted(p.name for p in JPEGS.iterdir() if p.is_dir())
    per_class = [sorted((JPEGS / c).glob("*.jpg")) for c in classes]
    files = [(f, y) for group in zip(*per_class, strict=False) for y, f in enumerate(group)]
    return files[:limit] if limit else files


def write_shards(files: list[tuple[Path, int]], out: Path, per_shard: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with wds.ShardWriter(str(out / "train-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
        for i, (file, label) in enumerate(files):
            sink.write({"__key__": f"{i:06d}", "jpg": file.read_bytes(), "cls": str(label)})


def write_npz(files: list[tuple[Path, int]], out: Path) -> None:
    images = torch.stack([decode_image_file(str(f)) for f, _ in files]).numpy()
    labels = np.array([y for _, y in files], dtype=np.int64)
    np.savez(out, images=images, labels=labels)


def images_per_second(source: str, args: argparse.Namespace, out: Path) -> float:
    cfg = selfsup.make_config(
        **{
            "data.source": source,
            "data.workers": args.workers,
            "data.heldout_fraction": args.heldout,
            "data.eval_samples": 256,
            "model.backbone": "convnet",
            "method.name": "simclr",
            "train.batch_size": args.batch_size,
            "train.epochs": args.epochs,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.protocols": "",
            "train.device": args.device,
        }
    )
    result = selfsup.pretrain(cfg, out, overwrite=True)
    return result.samples_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=None, help="first N images (all: 50,000)")
    parser.add_argument("--per-shard", type=int, default=5000, help="images per shard")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader decoding processes")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--heldout", type=float, default=0.02, help="data.heldout_fraction")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dir", default=None, help="where shards and runs go (default: a tmp)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not JPEGS.is_dir():
        raise SystemExit(f"{JPEGS} is missing: the CIFAR-10 JPEGs (see data/README.md)")
    work = Path(args.dir or tempfile.mkdtemp(prefix="wds-throughput-"))
    files = cifar_files(args.images)
    shards, npz = work / "shards", work / "cifar10.npz"
    write_shards(files, shards, args.per_shard)
    write_npz(files, npz)
    rows = []
    for name, source in (("in memory (npy)", f"npy:{npz}"), ("wds streaming", f"wds:{shards}")):
        rate = images_per_second(source, args, work / name.split()[0])
        rows.append((name, rate))
    base = rows[0][1]
    print(
        f"\nconvnet SimCLR, {len(files)} CIFAR-10 JPEGs, batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.workers} workers, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"device {args.device}"
    )
    print(f"{'source':<18}{'images/s':>10}{'x in memory':>13}")
    for name, rate in rows:
        print(f"{name:<18}{rate:>10.0f}{rate / base:>13.2f}")


if __name__ == "__main__":
    main()
