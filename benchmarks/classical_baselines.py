"""Classical embeddings (PCA, metric MDS, Isomap, LLE) beside the raw input, the random encoder
and a learned encoder (SimCLR at a few epochs): kNN and linear-probe accuracy on digits and a
Fashion-MNIST subset, with each classical method's fit time; one markdown table (issue 27).

Each dataset: `selfsup.pretrain` trains SimCLR (train.epochs from --digits-epochs /
--fashion-epochs, eval.protocols knn,linear), whose eval.json gives the learned, random and
raw-pixel rows; then each classical row is made by `selfsup.evaluate.classical.classical_rows`
on the same bank and queries, exactly as `--set eval.baselines=pca,mds,isomap,lle` makes it,
timed (fit on the bank or a seeded sample of eval.baseline_fit_samples of it, then the other
bank rows and the queries placed out of sample; the protocols' time excluded). Width: the
learned encoder's (256), capped at the input columns that vary on the bank.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        python benchmarks/classical_baselines.py [--train 10000 --test 2000]

`--train` / `--test` take seeded, class-stratified subsets of Fashion-MNIST's train and test
splits. The machine is shared: wall times are indicative only, not speed figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from subsets import subset_file

import selfsup
from selfsup.evaluate import classical
from selfsup.evaluate.registry import run_protocols
from selfsup.evaluate.suite import raw_baseline_data
from selfsup.export import load
from selfsup.modalities import get_modality
from selfsup.run_data import load_run_splits, run_config, run_evaluation_data

NAMES = ("pca", "isomap", "lle", "mds")  # mds last: the slowest
PROTOCOLS = ("knn", "linear")


def rows_of(source: str, epochs: int, out: Path) -> Iterator[tuple[str, dict, float | None, str]]:
    """(row, figures, fit seconds, how) of the raw, random, classical and learned rows, each as
    soon as it is made."""
    cfg = selfsup.make_config(
        **{
            "data.source": source,
            "method.name": "simclr",
            "train.epochs": epochs,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.protocols": ",".join(PROTOCOLS),
        }
    )
    start = time.perf_counter()
    if (out / "eval.json").is_file():  # a run of an earlier call: its figures, no new training
        evaluation, trained = json.loads((out / "eval.json").read_text()), None
    else:
        evaluation = selfsup.pretrain(cfg, out).evaluation
        trained = time.perf_counter() - start
    yield ("raw pixels (standardised)", evaluation["raw_pixels"], None, "")
    yield ("random encoder", evaluation["random"], None, "")
    run_cfg = run_config(out)
    data = run_evaluation_data(run_cfg, load_run_splits(run_cfg, out))
    raw, _ = raw_baseline_data(data, run_cfg.eval.raw_bank_limit)
    width = load(out).out_dim
    modality = get_modality("image")
    for name in NAMES:
        start = time.perf_counter()
        bank, queries = modality.raw_features(raw.bank, raw.queries)
        z_bank, z_queries, line = classical.embed_raw(
            name,
            bank,
            queries,
            dim=width,
            fit_samples=run_cfg.eval.baseline_fit_samples,
            neighbors=run_cfg.eval.baseline_neighbors,
            seed=run_cfg.train.seed,
            dim_from="the learned encoder's width",
        )
        seconds = time.perf_counter() - start
        figures = run_protocols(raw.features(z_queries, z_bank, run_cfg), PROTOCOLS, name)
        yield (name, figures, seconds, line)
    yield (f"SimCLR, {epochs} epochs", evaluation["selfsup"], trained, "fit = training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--digits-epochs", type=int, default=30)
    parser.add_argument("--fashion-epochs", type=int, default=5)
    parser.add_argument("--only", choices=("digits", "fashion-mnist"), default=None)
    parser.add_argument("--work", type=Path, default=None, help="where runs are written")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="classical_baselines-"))
    work.mkdir(parents=True, exist_ok=True)
    sets = []
    if args.only in (None, "digits"):
        sets.append(("digits (1,437 bank / 360 queries)", "digits", args.digits_epochs))
    if args.only in (None, "fashion-mnist"):
        source = f"npy:{subset_file('fashion-mnist', args.train, args.test, work)}"
        sets.append(
            (
                f"Fashion-MNIST ({args.train:,} bank / {args.test:,} queries)",
                source,
                args.fashion_epochs,
            )
        )
    print("| data | row | kNN top-1 (%) | linear top-1 (%) | fit (s) |")
    print("|---|---|---|---|---|")
    said = []
    for title, source, epochs in sets:
        for row, figures, seconds, how in rows_of(
            source, epochs, work / f"run-{title.split()[0].lower()}"
        ):
            wall = "" if seconds is None else f"{seconds:.1f}"
            print(
                f"| {title} | {row} | {100 * figures['knn_top1']:.2f} | "
                f"{100 * figures['linear_top1']:.2f} | {wall} |",
                flush=True,
            )
            if how:
                said.append(f"- {title}, {row}: {how}")
    print("\n" + "\n".join(said))
    print(f"\none thread, shared machine: wall times are indicative only. Runs in {work}")


if __name__ == "__main__":
    main()
