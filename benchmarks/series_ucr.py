"""Series methods on every UCR/UEA set bundled with aeon, over several seeds, scored by the field's
protocol (an RBF-SVM, C by cross-validation: TS2Vec's) and by kNN and a linear probe, beside the
random encoder, the raw signal, DTW 1-NN and TS2Vec's published accuracy. Run by hand; prints
markdown tables after each set (a run stopped early keeps its figures) and at the end.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/series_ucr.py \
        --methods ts2vec tstcc cpc simclr --seeds 0 1 2 --epochs 40
    python benchmarks/series_ucr.py --sets ItalyPowerDemand --methods cpc --epochs 1 --seeds 0

Each method trains with its own defaults (its published optimiser, learning rate, augmentation
and backbone): `--set KEY=VALUE` overrides a setting for every method, `--set METHOD:KEY=VALUE`
for one (`--set cpc:train.batch_size=8`), `--epochs-for METHOD=N` sets one method's epochs. The
training batch is capped at the training set's size. The baselines that do not depend on the
method or the seed (raw_signal, dtw_1nn) are read from each set's first run; the random encoder
is each method's own architecture at each seed. The average row is over the sets that have the
column's figure; it is not comparable with averages over the 128 UCR sets that papers report.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from store_memory import cpu_name  # benchmarks/ is the working folder of a benchmark

import selfsup
from selfsup.config import parse_scalar
from selfsup.data import load_data
from selfsup.methods import available_methods

# Every classification set bundled with aeon 1.6 that loads offline (cheapest first, so that a
# run stopped early has the most sets). aeon's folder also holds UnitTest (a 42-series cut of
# Chinatown for aeon's own tests, not a UCR set) and regression and forecasting sets.
SETS = (
    "ItalyPowerDemand",
    "BasicMotions",
    "GunPoint",
    "JapaneseVowels",
    "ArrowHead",
    "PickupGestureWiimoteZ",
    "OSULeaf",
    "ACSF1",
)

# TS2Vec's published test accuracy per set (Yue et al. 2022, arXiv 2106.10466, the full UCR and
# UEA tables of its appendix), only numbers read in the paper itself: the rest print "-".
# Not filled in yet: the paper's table could not be read in the session that wrote this file.
TS2VEC_PUBLISHED: dict[str, float] = {}

PROTOCOLS = ("svm", "knn", "linear")
LABELS = {"svm": "SVM", "knn": "kNN", "linear": "linear"}


def overrides(method: str, sets: list[str]) -> dict[str, object]:
    """The `--set` overrides for `method`: KEY=VALUE for all, METHOD:KEY=VALUE for this one."""
    out: dict[str, object] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE or METHOD:KEY=VALUE, got {item!r}")
        who, colon, name = key.partition(":")
        if colon and who != method:
            continue
        out[name if colon else key] = parse_scalar(value)
    return out


def run_one(
    name: str, method: str, seed: int, first: bool, args: argparse.Namespace, out: Path
) -> dict:
    """One pretraining run of `method` on ucr:`name` at `seed`; its eval.json as a dict."""
    train_size = len(load_data(f"ucr:{name}").train)
    settings: dict[str, object] = {
        "data.source": f"ucr:{name}",
        "method.name": method,
        "train.epochs": args.epochs_for.get(method, args.epochs),
        "train.batch_size": args.batch_size,
        "train.progress": False,
        "train.eval_every": 0,
        "train.report": False,
        "train.seed": seed,
        "eval.protocols": ",".join(PROTOCOLS),
        "eval.knn_k": args.knn_k,
        # DTW 1-NN depends on neither method nor seed: once per set
        "eval.dtw_limit": args.dtw_limit if first else 0,
    }
    settings |= overrides(method, args.set)
    settings["train.batch_size"] = batch = min(int(settings["train.batch_size"]), train_size)
    if method in args.steps_for:  # a budget in optimiser steps (TS2Vec's reference: 200)
        per_epoch = max(1, train_size // batch)  # full batches, as the loop draws them
        settings["train.epochs"] = -(-args.steps_for[method] // per_epoch)
    cfg = selfsup.make_config(**settings)
    return selfsup.pretrain(cfg, out / f"{method}-{name}-{seed}").evaluation


def cell(values: list[float]) -> str:
    """Mean ± sample std over seeds in %, or the one value, or "-"."""
    if not values:
        return "-"
    mean = 100 * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def figures(runs: list[dict], row: str, key: str) -> list[float]:
    """The figure `key` of eval.json row `row` over the runs that have it."""
    return [r[row][key] for r in runs if isinstance(r.get(row), dict) and key in r[row]]


def table(results: dict[str, dict[str, list[dict]]], methods: list[str], protocol: str) -> str:
    """One markdown table for `protocol`: a row per set, each method's figure and its random
    encoder's (mean ± std over seeds), raw_signal's, and for the SVM DTW 1-NN and TS2Vec's
    published accuracy; the average row last (mean over sets of the per-set means)."""
    key = f"{protocol}_top1"
    columns: list[tuple[str, str, str, str]] = []  # (header, method or "", row, key)
    for m in methods:
        columns += [(f"{m} {LABELS[protocol]}", m, "selfsup", key)]
        columns += [(f"{m} random {LABELS[protocol]}", m, "random", key)]
    columns.append((f"raw_signal {LABELS[protocol]}", "", "raw_signal", key))
    if protocol == "svm":
        columns.append(("DTW 1-NN", "", "dtw_1nn", "dtw_1nn_top1"))
    header = ["data set"] + [c[0] for c in columns]
    if protocol == "svm":
        header.append("TS2Vec (paper)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    means: dict[int, list[float]] = {}
    for name, by_method in results.items():
        first = next(iter(by_method.values()))[0]  # the set's first run: raw_signal, dtw_1nn
        row = [name]
        for i, (_, method, part, k) in enumerate(columns):
            values = figures(by_method.get(method, []) if method else [first], part, k)
            row.append(cell(values))
            if values:
                means.setdefault(i, []).append(statistics.fmean(values))
        if protocol == "svm":
            published = TS2VEC_PUBLISHED.get(name)
            row.append("-" if published is None else f"{100 * published:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    average = [f"**average ({len(results)} sets)**"]
    for i in range(len(columns)):
        values = means.get(i, [])
        more = "" if len(values) == len(results) else f" ({len(values)} sets)"
        average.append(f"**{100 * statistics.fmean(values):.1f}**{more}" if values else "-")
    if protocol == "svm":
        average.append("-")
    lines.append("| " + " | ".join(average) + " |")
    return "\n".join(lines)


def report(
    results: dict[str, dict[str, list[dict]]],
    methods: list[str],
    seconds: dict[str, float],
    args: argparse.Namespace,
) -> str:
    """The SVM table, the kNN and linear tables, the wall time per method and the settings."""
    parts = [f"### {LABELS[p]} top-1 (%)\n\n{table(results, methods, p)}" for p in PROTOCOLS]
    timing = ", ".join(f"{m} {seconds[m]:.0f} s" for m in methods)
    budget = ", ".join(
        f"{m} {args.steps_for[m]} steps"
        if m in args.steps_for
        else f"{m} {args.epochs_for.get(m, args.epochs)}"
        for m in methods
    )
    parts.append(
        f"Seeds {' '.join(map(str, args.seeds))}; epochs {budget}; batch min({args.batch_size}, "
        f"training set); each method's own optimiser and augmentation"
        + (f"; --set {' '.join(args.set)}" if args.set else "")
        + f"; kNN k = {args.knn_k}. Wall time over all sets and seeds (pretraining + evaluation):"
        f" {timing}. CPU: {cpu_name()}."
    )
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--methods", nargs="+", default=["ts2vec", "tstcc", "cpc", "simclr"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40, help="every method's epochs")
    parser.add_argument(
        "--epochs-for", nargs="*", default=[], metavar="METHOD=N", help="one method's epochs"
    )
    parser.add_argument(
        "--steps-for",
        nargs="*",
        default=[],
        metavar="METHOD=N",
        help="one method's budget in optimiser steps (epochs = ceil(N / full batches per epoch))",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="capped at the training set")
    parser.add_argument("--knn-k", type=int, default=5)
    parser.add_argument(
        "--dtw-limit", type=int, default=30_000_000_000, help="eval.dtw_limit (all 8 sets whole)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="[METHOD:]KEY=VALUE", help="a config key"
    )
    args = parser.parse_args()
    unknown = [m for m in args.methods if m not in available_methods()]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}: {', '.join(available_methods())}")
    args.epochs_for = {m: int(n) for m, _, n in (e.partition("=") for e in args.epochs_for)}
    args.steps_for = {m: int(n) for m, _, n in (e.partition("=") for e in args.steps_for)}
    print(f"CPU: {cpu_name()}", flush=True)
    results: dict[str, dict[str, list[dict]]] = {}
    seconds = dict.fromkeys(args.methods, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            for method in args.methods:
                for seed in args.seeds:
                    first = name not in results
                    start = time.perf_counter()
                    ev = run_one(name, method, seed, first, args, Path(tmp))
                    results.setdefault(name, {}).setdefault(method, []).append(ev)
                    took = time.perf_counter() - start
                    seconds[method] += took
                    print(f"done {method} seed {seed} on ucr:{name} ({took:.0f} s)", flush=True)
            print(f"\n(after {len(results)} of {len(args.sets)} sets)\n")
            print(report(results, args.methods, seconds, args), flush=True)
    print("\n(final)\n")
    print(report(results, args.methods, seconds, args))


if __name__ == "__main__":
    main()
