"""Peak anonymous memory (RssAnon) of evaluating an encoder on a memory-mapped image split,
beside what the evaluation must hold: the (N, D) features and the raw-pixel baseline's rows.

A synthetic store of `--rows` train images and `--test` held-out images (uint8, C x S x S,
labelled) is written to a temporary folder and opened as memory-mapped ImageData, as
`store:DIR` opens a store; the suite then runs kNN and the linear probe on the learned encoder
(a fixed pooling encoder, so that the time goes to the data path), the random encoder and raw
pixels. The pixels stay in the page cache: RssAnon grows with the features and the bounded
raw-pixel rows (eval.raw_bank_limit), not with the store. Run by hand, e.g.

    PYTHONPATH=src python benchmarks/eval_memory.py --rows 200000 --test 10000 --size 32
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import Config
from selfsup.data.images import ImageData
from selfsup.evaluate.suite import EvalData, evaluate_with_baselines
from selfsup.modalities import get_modality
from selfsup.models import ImageEncoderSpec, build_encoder


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakRss:
    """Samples RssAnon every 10 ms in a thread; `peak` is the largest seen."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = rss_anon_mb(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon_mb())
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_mb())


class Pool(nn.Module):
    """A fixed encoder: pixels average-pooled to 4 x 4 per channel (48 features for RGB)."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.spec = ImageEncoderSpec(
            "convnet", channels, size, True, (0.5,) * channels, (0.25,) * channels
        )
        self.out_dim = channels * 16

    def preprocess(self, raw: object) -> torch.Tensor:
        return build_encoder(self.spec).preprocess(raw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)


def synthetic(folder: Path, name: str, rows: int, channels: int, size: int, seed: int) -> ImageData:
    """A labelled memory-mapped split of `rows` images: 10 classes, each a brightness level."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, rows)
    path = folder / f"{name}.u8"
    array = np.memmap(path, dtype=np.uint8, mode="w+", shape=(rows, channels, size, size))
    for start in range(0, rows, 4096):
        y = labels[start : start + 4096]
        noise = rng.integers(0, 60, (len(y), channels, size, size))
        array[start : start + len(y)] = (y[:, None, None, None] * 18 + noise).astype(np.uint8)
    array.flush()
    del array
    view = np.memmap(path, dtype=np.uint8, mode="r", shape=(rows, channels, size, size))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        images = torch.from_numpy(view)
    return ImageData(images, torch.from_numpy(labels), [str(i) for i in range(10)], name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000, help="train (bank) images")
    p.add_argument("--test", type=int, default=10_000, help="held-out (query) images")
    p.add_argument("--size", type=int, default=32, help="image side in pixels")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--raw-bank-limit", type=int, default=Config().eval.raw_bank_limit)
    p.add_argument("--protocols", default="knn,linear")
    args = p.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train = synthetic(folder, "train", args.rows, args.channels, args.size, 0)
        test = synthetic(folder, "test", args.test, args.channels, args.size, 1)
        cfg = Config()
        cfg.eval.raw_bank_limit = args.raw_bank_limit
        encoder = Pool(args.channels, args.size)
        names = tuple(args.protocols.split(","))
        before = rss_anon_mb()
        start = time.perf_counter()
        with PeakRss() as peak:
            results = evaluate_with_baselines(
                encoder, get_modality("image"), EvalData(train, test, "synthetic"), cfg, names
            )
        seconds = time.perf_counter() - start
    pixels = (args.rows + args.test) * args.channels * args.size**2
    features = (args.rows + args.test) * encoder.out_dim * 4
    random_dim = build_encoder(encoder.spec).out_dim
    random_features = (args.rows + args.test) * random_dim * 4
    raw_rows = min(args.rows, args.raw_bank_limit) + min(args.test, args.raw_bank_limit)
    raw = raw_rows * args.channels * args.size**2 * 4
    print(f"{'rows (bank + queries)':<34}{args.rows:,} + {args.test:,}")
    print(f"{'image':<34}{args.channels} x {args.size} x {args.size} uint8")
    print(f"{'pixels on disk (page cache)':<34}{pixels / 2**20:,.0f} MB")
    print(f"{'learned features (N, 48) float':<34}{features / 2**20:,.0f} MB")
    print(f"{'random features (N, D) float':<34}{random_features / 2**20:,.0f} MB")
    print(f"{'raw-pixel rows (bounded) float':<34}{raw / 2**20:,.0f} MB ({raw_rows:,} rows)")
    print(f"{'RssAnon before evaluation':<34}{before:,.0f} MB")
    print(f"{'peak RssAnon during evaluation':<34}{peak.peak:,.0f} MB")
    print(f"{'peak - before':<34}{peak.peak - before:,.0f} MB")
    print(f"{'time':<34}{seconds:,.1f} s")
    print(f"{'sampled':<34}{results.get('raw_sample', 'nothing')}")
    for row in ("selfsup", "random", "raw_pixels"):
        print(f"{row:<34}{results.get(row)}")


if __name__ == "__main__":
    main()
