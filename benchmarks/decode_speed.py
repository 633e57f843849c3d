"""Decoding a JPEG folder: `selfsup prepare` (to a store) beside torchvision's ImageFolder.

Run by hand: `python benchmarks/decode_speed.py [--images 5000] [--photos 500x375,1000x750]
[--sizes 96,224] [--workers 2]`. The JPEGs are made here: the first --images CIFAR-10 train
images of data/cifar10-jpg (32 px) upscaled (bicubic) to each of --photos (width x height)
and saved at JPEG quality 90 in a temporary folder (decode time depends on the pixel count,
not on the content; give --folder DIR to time your own photos instead). Every file is read
once first, so that all rows time decoding from the page cache, not the disk. Rows, per
stored size S:

- prepare: `selfsup prepare folder:DIR --image-size S` with --workers processes: JPEGs of at
  least 4 x S on both sides decode at a reduced size (Pillow's draft), then resize to S and
  a centre crop;
- prepare, full decode: the same without the reduced-size decode (draft=False), to show
  what it alone gives;
- ImageFolder: torchvision ImageFolder + DataLoader(num_workers=--workers, batch 256), PIL
  loader, Resize(S) + CenterCrop(S) + PILToTensor (uint8, no float conversion), iterated once:
  the way lightly and solo-learn load a folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2 as T
from PIL import Image
from store_memory import cpu_name  # benchmarks/ is the working folder of a benchmark
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from selfsup.data.folder import list_folder
from selfsup.data.prepare import Segment, write_store

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO / "data" / "cifar10-jpg" / "train"


def make_jpegs(out: Path, count: int, width: int, height: int) -> None:
    """The first `count` CIFAR train images (class folders kept) upscaled and saved as JPEG."""
    if not CIFAR.is_dir():
        raise SystemExit(f"{CIFAR} is missing: give --folder DIR with JPEG class folders")
    per_class = -(-count // 10)
    made = 0
    for cls in sorted(p for p in CIFAR.iterdir() if p.is_dir()):
        for src in sorted(cls.glob("*.jpg"))[:per_class]:
            if made == count:
                return
            target = out / cls.name / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(src) as im:
                im.convert("RGB").resize((width, height), Image.BICUBIC).save(target, quality=90)
            made += 1


def warm(root: Path) -> int:
    """Read every file once (page cache); the number of files."""
    n = 0
    for where, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(where, name), "rb") as f:
                f.read()
            n += 1
    return n


def time_prepare(root: Path, size: int, workers: int, draft: bool) -> float:
    items, key = list_folder(root.resolve(), size)
    segments = [Segment(split, part, np.arange(len(part))) for split, part in items.items()]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = write_store(
            segments,
            Path(tmp) / "store",
            source=f"folder:{root}",
            fingerprint=key,
            image_size=size,
            classes=segments[0].source.classes,
            workers=workers,
            draft=draft,
            progress=False,
        )
        seconds = time.perf_counter() - start
    return result.index.shape[0] / seconds


def time_image_folder(root: Path, size: int, workers: int) -> float:
    transform = T.Compose([T.Resize(size), T.CenterCrop(size), T.PILToTensor()])
    data = ImageFolder(str(root), transform=transform)
    loader = DataLoader(data, batch_size=256, num_workers=workers, shuffle=False)
    start = time.perf_counter()
    seen = sum(len(images) for images, _ in loader)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000, help="JPEGs to make")
    parser.add_argument(
        "--photos", default="500x375,1000x750", help="JPEG sizes to make, WIDTHxHEIGHT, commas"
    )
    parser.add_argument("--sizes", default="96,224", help="stored sizes S, comma separated")
    parser.add_argument("--workers", type=int, default=2, help="processes on both sides")
    parser.add_argument("--folder", help="time this JPEG folder instead of making one")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loader (median)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the workers are the parallelism, on both sides
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {args.workers} worker processes")
    if args.folder:
        table(Path(args.folder), f"the JPEGs under {args.folder}", args)
        return
    for photo in args.photos.split(","):
        width, height = (int(v) for v in photo.lower().split("x"))
        tmp = Path(tempfile.mkdtemp(prefix="decode-speed-"))
        try:
            make_jpegs(tmp, args.images, width, height)
            what = (
                f"CIFAR-10 train JPEGs (data/cifar10-jpg) upscaled to {width}x{height}, "
                f"JPEG quality 90"
            )
            table(tmp, what, args)
        finally:
            shutil.rmtree(tmp)


def table(root: Path, what: str, args: argparse.Namespace) -> None:
    n = warm(root)
    print(f"\ndecode {n} images: {what}; median of {args.repeats} interleaved runs")
    print(f"{'S':>4} {'loader':34s} {'images/s':>9} {'x ImageFolder':>14}  runs")
    for size in (int(s) for s in args.sizes.split(",")):
        loaders = {  # name -> (timer, its arguments)
            "selfsup prepare (reduced decode)": (time_prepare, (root, size, args.workers, True)),
            "selfsup prepare, full decode": (time_prepare, (root, size, args.workers, False)),
            "ImageFolder + DataLoader (PIL)": (time_image_folder, (root, size, args.workers)),
        }
        rates: dict[str, list[float]] = {name: [] for name in loaders}
        for _ in range(args.repeats):  # interleaved: a slow moment of the machine hits each
            for name, (timer, timer_args) in loaders.items():
                rates[name].append(timer(*timer_args))
        base = statistics.median(rates["ImageFolder + DataLoader (PIL)"])
        for name, runs in rates.items():
            rate = statistics.median(runs)
            each = ", ".join(f"{r:,.0f}" for r in runs)
            print(f"{size:>4} {name:34s} {rate:>9,.0f} {rate / base:>13.2f}x  {each}")


if __name__ == "__main__":
    main()
