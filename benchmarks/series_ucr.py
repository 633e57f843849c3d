"""CPC and SimCLR (series augmentations) on the UCR/UEA sets bundled with aeon, each for a short
budget, scored by kNN and a linear probe on pooled context features beside the random encoder
and the raw signal (z-normalised, flattened). Run by hand; prints one table per data set and
the average over the sets.

    python benchmarks/series_ucr.py --epochs 40
    python benchmarks/series_ucr.py --sets GunPoint ItalyPowerDemand --methods cpc

The table covers the bundled sets only: it is not comparable with averages over the 128 UCR
sets reported by papers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import selfsup
from selfsup.data import load_data
from selfsup.data.series import UCR_BUNDLED

METHODS = {
    "cpc": {"method.name": "cpc"},
    "simclr": {"method.name": "simclr", "method.proj_hidden_dim": 128, "method.proj_dim": 64},
}
ROWS = ("selfsup", "random", "raw_signal")


def run_one(name: str, method: str, args: argparse.Namespace, out: Path) -> dict:
    """One pretraining run of `method` on ucr:`name`; its eval.json as a dict."""
    train_size = len(load_data(f"ucr:{name}").train)
    cfg = selfsup.make_config(
        **METHODS[method],
        **{
            "data.source": f"ucr:{name}",
            "train.epochs": args.epochs,
            "train.batch_size": min(args.batch_size, train_size),
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "optim.name": "adamw",
            "optim.lr": args.lr,
            "eval.protocols": "knn,linear",
            "eval.knn_k": 5,
            "train.seed": args.seed,
        },
    )
    return selfsup.pretrain(cfg, out / f"{method}-{name}").evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(UCR_BUNDLED))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    totals: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            print(f"\n== ucr:{name} ==")
            print(f"{'method':8} {'row':11} {'kNN':>7} {'linear':>7} {'seconds':>8}")
            for method in args.methods:
                start = time.perf_counter()
                ev = run_one(name, method, args, Path(tmp))
                seconds = time.perf_counter() - start
                for row in ROWS:
                    figures = ev.get(row, {})
                    knn, lin = figures.get("knn_top1", float("nan")), figures.get("linear_top1")
                    lin = float("nan") if lin is None else lin
                    totals.setdefault((method, row, "knn"), []).append(knn)
                    totals.setdefault((method, row, "linear"), []).append(lin)
                    print(f"{method:8} {row:11} {100 * knn:6.1f}% {100 * lin:6.1f}% {seconds:8.0f}")
    print(f"\n== average over {len(args.sets)} bundled sets ==")
    for method in args.methods:
        for row in ROWS:
            knn = totals[(method, row, "knn")]
            lin = totals[(method, row, "linear")]
            print(
                f"{method:8} {row:11} {100 * sum(knn) / len(knn):6.1f}% "
                f"{100 * sum(lin) / len(lin):6.1f}%"
            )


if __name__ == "__main__":
    main()
