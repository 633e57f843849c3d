"""The learned Mahalanobis metric (method mahalanobis) on digits and Fashion-MNIST beside raw
pixels and a random map: 5-NN with the Euclidean distance (the metric's own kNN), and the
suite's weighted cosine kNN and linear probe. Run by hand; prints a markdown table.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/mahalanobis_digits.py
    ... --data fashion-mnist --epochs 2 --protocols knn
    ... --loss triplet

Rows: `learned` the exported map; `random` a random map of the same shape (the run's random
encoder, L ~ N(0, 1/dim)); `raw` the pixels (the Euclidean row: uint8 pixels flattened; the
suite's rows: its standardised raw-pixel row). Queries are the test split, never in the bank.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import selfsup
from selfsup.data import load_data
from selfsup.models.registry import build_encoder


def euclidean_knn(train: tuple, test: tuple, k: int = 5) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(k).fit(*train).score(*test))


def features(encoder, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([encoder(encoder.preprocess(part)) for part in images.split(4096)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--loss", default="nca")
    parser.add_argument("--protocols", default="knn,linear")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = selfsup.make_config(
        **{
            "data.source": args.data,
            "method.name": "mahalanobis",
            "method.loss": args.loss,
            "train.epochs": args.epochs,
            "train.batch_size": args.batch_size,
            "train.eval_every": 0,
            "train.report": False,
            "train.progress": False,
            "eval.protocols": args.protocols,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = selfsup.pretrain(cfg, Path(tmp) / "run")
        learned = selfsup.load(Path(tmp) / "run")
    torch.manual_seed(cfg.train.seed)  # the suite's random encoder
    random = build_encoder(learned.spec).eval()
    data = load_data(args.data)
    y_train, y_test = data.train.labels.numpy(), data.test.labels.numpy()
    euclid = {
        name: euclidean_knn(
            (features(enc, data.train.images).numpy(), y_train),
            (features(enc, data.test.images).numpy(), y_test),
        )
        for name, enc in (("learned", learned), ("random", random))
    }
    raw = [split.images.flatten(1).float().numpy() for split in (data.train, data.test)]
    euclid["raw"] = euclidean_knn((raw[0], y_train), (raw[1], y_test))
    suite = {"learned": "selfsup", "random": "random", "raw": "raw_pixels"}
    names = [p.strip() for p in args.protocols.split(",") if p.strip()]
    print(
        f"\nmahalanobis loss={args.loss} on {args.data}, {args.epochs} epochs at batch "
        f"{args.batch_size}; test-split accuracy (%)\n"
    )
    print("| row | 5-NN Euclidean | " + " | ".join(f"{n} (suite)" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for row, key in suite.items():
        cells = [
            f"{100 * result.evaluation[key].get(f'{n}_top1', float('nan')):.2f}" for n in names
        ]
        print(f"| {row} | {100 * euclid[row]:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
