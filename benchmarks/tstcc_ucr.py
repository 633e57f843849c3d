"""TS-TCC on UCR sets bundled with aeon: the learned encoder against its random encoder (same
architecture and seed) and the raw signal, by kNN (k = 5) and the linear probe, for three ways of
turning the per-step latents into one vector: the mean or the max over the valid steps, and the
reference's flattened latents (length-dependent). Run by hand; prints one markdown table.

    OMP_NUM_THREADS=1 python benchmarks/tstcc_ucr.py --sets GunPoint ItalyPowerDemand --epochs 40
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import selfsup
from selfsup.data import load_data
from selfsup.evaluate.knn import knn_accuracy
from selfsup.evaluate.linear import linear_probe
from selfsup.modalities.series import raw_series_features
from selfsup.models import build_encoder

POOLINGS = ("mean", "max", "flatten")


def vectors(encoder, data, pooling: str) -> torch.Tensor:
    """One vector per series of `data` from the encoder's latents, pooled as `pooling` says."""
    encoder.eval()
    mask = data.mask if data.mask is not None else torch.ones(len(data), data.length, dtype=bool)
    with torch.no_grad():
        z, valid = encoder.latents({"series": data.series, "mask": mask})
    if pooling == "flatten":
        return (z * valid[..., None]).flatten(1)
    w = valid[..., None].to(z.dtype)
    if pooling == "max":
        return z.masked_fill(~valid[..., None], float("-inf")).amax(1)
    return (z * w).sum(1) / w.sum(1)


def scores(train_x, train_y, test_x, test_y) -> tuple[float, float]:
    knn = knn_accuracy(train_x, train_y, test_x, test_y, k=5)
    return knn, linear_probe(train_x, train_y, test_x, test_y)["accuracy"]


def run_set(name: str, args: argparse.Namespace, out: Path) -> list[str]:
    source = name if ":" in name else f"ucr:{name}"  # a UCR name, or any series source
    data = load_data(source)
    train_size = len(data.train)
    cfg = selfsup.make_config(
        **{
            "data.source": source,
            "method.name": "tstcc",
            "train.epochs": args.epochs,
            "train.batch_size": min(args.batch_size, train_size),
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.protocols": "",
            "train.seed": args.seed,
        }
        | ({"optim.lr": args.lr} if args.lr else {})
    )
    result = selfsup.pretrain(cfg, out / name.replace("/", "_").replace(":", "_"))
    torch.manual_seed(args.seed)
    random = build_encoder(result.encoder.spec)
    train, test = data.train, data.test
    rows = []
    for pooling in POOLINGS:
        cells = []
        for encoder in (result.encoder, random):
            got = scores(
                vectors(encoder, train, pooling),
                train.labels,
                vectors(encoder, test, pooling),
                test.labels,
            )
            cells += [f"{100 * v:.1f}" for v in got]
        rows.append(f"| {name} | {pooling} | " + " | ".join(cells) + " |")
    raw = scores(raw_series_features(train), train.labels, raw_series_features(test), test.labels)
    rows.append(f"| {name} | raw signal | {100 * raw[0]:.1f} | {100 * raw[1]:.1f} | | | ")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["GunPoint", "ItalyPowerDemand"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--lr", type=float, default=None, help="per 256 samples (default: the method's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = [
        "| data set | series vector | tstcc kNN | tstcc linear | random kNN | random linear |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            lines += run_set(name, args, Path(tmp))
            print("\n".join(lines), flush=True)
    print(
        f"\n{args.epochs} epochs, batch min({args.batch_size}, training set), seed {args.seed}, "
        f"lr {args.lr or 'the method default'}; kNN k = 5 and the linear probe on the test "
        "split, %."
    )


if __name__ == "__main__":
    main()
