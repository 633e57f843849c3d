"""VQ-VAE + PixelCNN prior on Fashion-MNIST at one CPU budget: the generative figures (held-out
reconstruction MSE, codebook perplexity, bits per dimension with the learned prior and with the
uniform one, the prior's bits per code beside log2 K) and kNN / linear top-1 of the pooled
pre-quantisation features beside the random encoder and raw pixels. Run by hand; prints a
markdown table.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 \\
        PYTHONPATH=src python benchmarks/generative_vqvae.py --train 5120 --test 2000 --epochs 2

Training on a seeded subset of the 60,000 training images keeps one CPU thread under ten
minutes of training steps; the queries are a seeded subset of the official test split.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import selfsup
from selfsup.config import DataConfig
from selfsup.data.idx import load_fashion_mnist


def subset_npz(folder: Path, train: int, test: int, seed: int) -> Path:
    """A seeded subset of Fashion-MNIST as an npz source (images, labels, test_images, ...)."""
    data = load_fashion_mnist(None, DataConfig())
    g = torch.Generator().manual_seed(seed)
    tr = torch.randperm(len(data.train.images), generator=g)[:train]
    te = torch.randperm(len(data.test.images), generator=g)[:test]
    path = folder / "fashion-subset.npz"
    np.savez(
        path,
        images=data.train.images[tr].numpy(),
        labels=data.train.labels[tr].numpy(),
        test_images=data.test.images[te].numpy(),
        test_labels=data.test.labels[te].numpy(),
    )
    return path


def last_train_figure(run: Path, name: str) -> float:
    """The last logged training value of `name` (perplexity: logged by the autoencoder stage)."""
    value = math.nan
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "train" and name in record:
            value = record[name]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=5120, help="training images (subset)")
    parser.add_argument("--test", type=int, default=2000, help="held-out queries (subset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-codes", type=int, default=512)
    parser.add_argument("--prior-start", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=None, help="optim.lr per 256 (method's)")
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        npz = subset_npz(Path(tmp), args.train, args.test, seed=0)
        out = Path(args.out) if args.out else Path(tmp) / "run"
        settings = {
            "data.source": f"npy:{npz}",
            "method.name": "vqvae",
            "method.num_codes": args.num_codes,
            "method.prior_start": args.prior_start,
            "train.epochs": args.epochs,
            "train.batch_size": args.batch_size,
            "train.progress": False,
            "train.report": False,
            "eval.protocols": "knn,linear",
        }
        if args.lr is not None:
            settings["optim.lr"] = args.lr
        start = time.perf_counter()
        result = selfsup.pretrain(selfsup.make_config(**settings), out)
        minutes = (time.perf_counter() - start) / 60
        own = json.loads((out / "method_figures.json").read_text())["figures"]
        perplexity = last_train_figure(out, "perplexity")
        ev = result.evaluation
    steps = args.epochs * (args.train // args.batch_size)
    print(
        f"\nFashion-MNIST subset: {args.train} training images, {args.test} test queries; "
        f"{args.epochs} epochs at batch {args.batch_size} ({steps} steps, the prior from "
        f"{args.prior_start:.0%}); K = {args.num_codes}; {minutes:.1f} min wall (shared CPU: "
        "not a speed figure)\n"
    )
    print("| encoder | kNN top-1 (%) | linear top-1 (%) |")
    print("|---|---|---|")
    for row in ("selfsup", "random", "raw_pixels"):
        knn, lin = ev[row].get("knn_top1", math.nan), ev[row].get("linear_top1", math.nan)
        print(f"| {row} | {100 * knn:.2f} | {100 * lin:.2f} |")
    print("\n| figure (held-out) | value |")
    print("|---|---|")
    print(f"| reconstruction MSE ([0, 1] pixels) | {own['reconstruction_mse']:.4f} |")
    print(
        f"| codebook perplexity (last training batch, of K = {args.num_codes}) | {perplexity:.1f} |"
    )
    print(f"| bits/dim, learned prior | {own.get('bits_per_dim', math.nan):.3f} |")
    print(f"| bits/dim, uniform prior | {own['bits_per_dim_uniform_prior']:.3f} |")
    print(
        f"| prior bits per code (uniform: log2 K = {math.log2(args.num_codes):.2f}) | "
        f"{own.get('prior_bits_per_code', math.nan):.3f} |"
    )


if __name__ == "__main__":
    main()
