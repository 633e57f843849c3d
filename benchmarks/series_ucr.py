"""CPC and SimCLR (series augmentations) on the UCR/UEA sets bundled with aeon, each for a short
budget, scored by kNN and a linear probe on pooled context features beside the random encoder
and the raw signal (z-normalised, flattened). Run by hand; prints one markdown table with a row
per data set and the average row.

    taskset -c 0 python benchmarks/series_ucr.py --epochs 40
    python benchmarks/series_ucr.py --sets GunPoint ItalyPowerDemand --methods cpc

The table covers the classification sets bundled with aeon that load offline (SETS): it is not
comparable with averages over the 128 UCR sets reported by papers. ACSF1 is bundled too but left
out of the default list: its 1460-step series make CPC's exhaustive negatives cost
(64 x 365)^2 scores per prediction step.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import selfsup
from selfsup.data import load_data

# every classification set bundled with aeon that loads offline, but ACSF1 (see above)
# (cheapest first, so that a run stopped early has the most sets)
SETS = (
    "ItalyPowerDemand",
    "BasicMotions",
    "GunPoint",
    "JapaneseVowels",
    "ArrowHead",
    "PickupGestureWiimoteZ",
    "OSULeaf",
)

METHODS = {
    "cpc": {"method.name": "cpc"},
    "simclr": {"method.name": "simclr", "method.proj_hidden_dim": 128, "method.proj_dim": 64},
}


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


def cell(figures: dict, key: str) -> str:
    """One table cell: a percentage, or "-" when the protocol gave no figure."""
    value = figures.get(key)
    return "-" if value is None else f"{100 * value:.1f}"


def markdown_table(
    results: dict[str, dict[str, dict]], methods: list[str], seconds: dict[str, float]
) -> str:
    """One markdown table: a row per data set (kNN / linear of each method, of the random
    encoder and of the raw signal) and the average row over the sets."""
    columns = [*methods, "random", "raw_signal"]
    header = ["data set"] + [f"{c} {p}" for c in columns for p in ("kNN", "linear")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sums: dict[tuple[str, str], list[float]] = {}
    for name, by_method in results.items():
        row = [name]
        for column in columns:
            # the random encoder and the raw signal are read from the first method's run
            ev = by_method[column] if column in methods else by_method[methods[0]]
            figures = ev.get("selfsup" if column in methods else column, {})
            for key in ("knn_top1", "linear_top1"):
                row.append(cell(figures, key))
                if figures.get(key) is not None:
                    sums.setdefault((column, key), []).append(figures[key])
        lines.append("| " + " | ".join(row) + " |")
    average = [f"**average ({len(results)} sets)**"]
    for column in columns:
        for key in ("knn_top1", "linear_top1"):
            values = sums.get((column, key), [])
            average.append(f"**{100 * sum(values) / len(values):.1f}**" if values else "-")
    lines.append("| " + " | ".join(average) + " |")
    timing = ", ".join(f"{m} {seconds[m]:.0f} s" for m in methods)
    lines.append("")
    lines.append(f"Wall time over all sets (pretraining + evaluation): {timing}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results: dict[str, dict[str, dict]] = {}
    seconds = dict.fromkeys(args.methods, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            for method in args.methods:
                start = time.perf_counter()
                results.setdefault(name, {})[method] = run_one(name, method, args, Path(tmp))
                seconds[method] += time.perf_counter() - start
                print(f"done {method} on ucr:{name} ({time.perf_counter() - start:.0f} s)")
            # the table so far, so that a run stopped early still leaves its figures
            print(f"\n(after {len(results)} of {len(args.sets)} sets)")
            print(markdown_table(results, args.methods, seconds), flush=True)
    print()
    print(markdown_table(results, args.methods, seconds))
    print(
        f"\n{args.epochs} epochs per set, batch min({args.batch_size}, training set), AdamW "
        f"lr {args.lr:g} (scaled by batch / 256), seed {args.seed}; kNN k = 5 and a linear "
        "probe on the test split; accuracies in %."
    )


if __name__ == "__main__":
    main()
