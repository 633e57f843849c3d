"""The density models (RBM, NADE) on binarised Fashion-MNIST at one budget in epochs: kNN and
linear probe of each learned encoder beside its random encoder and raw pixels, the held-out
density figures (RBM: pseudo-NLL; NADE: NLL, nats per image), and the NLL of independent
pixels with the training set's marginals (the density baseline); one markdown table.

Each method trains through `selfsup.pretrain` at its own defaults (RBM: scikit-learn's setting,
NADE: the paper's 500 hidden units and SGD), at the batch given per method below; the figures
are the run's eval.json (the test split's 10,000 images are the queries).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/generative_density.py \\
        [--epochs 1 | --minutes 8] [--data fashion-mnist] [--methods rbm nade] [--out DIR]

Wall times under a shared machine are not speed figures.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import selfsup
from selfsup.models.binary import binarise
from selfsup.run_data import load_run_splits

# per method: the batch (RBM: scikit-learn's 10; NADE: 32, the paper trained image by image)
SETTINGS = {
    "rbm": {"train.batch_size": 10, "method.chains": 10},
    "nade": {"train.batch_size": 32},
}
DENSITY = {"rbm": "pseudo_nll_nats", "nade": "nll_nats"}


def independent_pixels_nll(cfg) -> float:
    """Held-out NLL (nats per image) of independent pixels, Laplace-smoothed training marginals."""
    splits = load_run_splits(cfg, None)
    train, test = binarise(splits.train.images), binarise(splits.test.images)
    p = (train.sum(0) + 1) / (len(train) + 2)
    return float(-(test * p.log() + (1 - test) * (1 - p).log()).sum(1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--methods", nargs="+", default=list(SETTINGS))
    parser.add_argument("--minutes", type=float, default=None, help="a time budget instead")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="density-"))
    lines = []
    baseline = None
    for name in args.methods:
        cfg = selfsup.make_config(
            **{
                "data.source": args.data,
                "method.name": name,
                "train.epochs": args.epochs,
                "train.time_budget": args.minutes,
                "train.eval_every": 0,
                "train.progress": False,
                "train.report": False,
                "train.device": "cpu",
                "eval.protocols": "knn,linear",
                **SETTINGS[name],
            }
        )
        if baseline is None:
            baseline = independent_pixels_nll(cfg)
        result = selfsup.pretrain(cfg, root / name)
        ev = result.evaluation
        seconds = (
            result.epochs
            * len(load_run_splits(cfg, None).train)
            / max(result.samples_per_second, 1e-9)
        )
        batch = SETTINGS[name]["train.batch_size"]
        for row, title in (("selfsup", "learned"), ("random", "random init"), ("raw_pixels", "")):
            figures = ev.get(row, {})
            if row == "raw_pixels" and name != args.methods[0]:
                continue
            label = f"{name} {title}" if title else "raw pixels (standardised)"
            density = figures.get(DENSITY[name]) if row != "raw_pixels" else None
            cells = [
                label,
                f"{result.epochs:.2f} ep, batch {batch}, {seconds:.1f} s"
                if row == "selfsup"
                else "",
                f"{100 * figures['knn_top1']:.2f}" if "knn_top1" in figures else "-",
                f"{100 * figures['linear_top1']:.2f}" if "linear_top1" in figures else "-",
                f"{DENSITY[name]} {density:.2f}" if density is not None else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    print(f"\n{args.data} binarised (pixel > 0.5), test split as queries; runs in {root}\n")
    print("| encoder | budget (train time) | kNN top-1 (%) | linear top-1 (%) | density (nats) |")
    print("|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"| independent pixels (training marginals) | - | - | - | nll_nats {baseline:.2f} |")


if __name__ == "__main__":
    main()
