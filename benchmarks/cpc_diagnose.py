"""Controlled CPC runs on small UCR sets (and the generated motif set): one configuration per
line of `--grid`, several seeds, kNN (k = 5) and the linear probe of the learned encoder beside
its random encoder (same seed) and the raw signal, and kNN of other poolings of the same learned
encoder (mean of z, last c). Run by hand, pinned to one thread; prints one markdown table.

    OMP_NUM_THREADS=1 python benchmarks/cpc_diagnose.py --sets GunPoint \
        --grid "epochs=10" "epochs=50" "epochs=50,method.negatives=same" --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import selfsup
from selfsup.data import load_data
from selfsup.evaluate.knn import knn_accuracy
from selfsup.models import build_encoder


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def pooled_knn(encoder, source: str) -> dict[str, float]:
    """kNN (k = 5) of an encoder's z-mean, c-last and standardised c-mean poolings."""
    encoder = encoder.eval()
    splits = load_data(source)
    out = {}
    feats = {}
    for split in ("train", "test"):
        data = getattr(splits, split)
        x = {
            "series": data.series,
            "mask": data.mask
            if data.mask is not None
            else torch.ones(len(data), data.length, dtype=torch.bool),
        }
        with torch.no_grad():
            z, valid = encoder.latents(x)
            c = encoder.context(z)
            w = valid[..., None].float()
            last = (valid.long().cumsum(1) == valid.sum(1, keepdim=True)) & valid
            feats[split] = {
                "z_mean": (z * w).sum(1) / w.sum(1),
                "c_last": (c * last[..., None].float()).sum(1),
                "c_mean": (c * w).sum(1) / w.sum(1),
            }
    # the pooled features centred and scaled by the training split's statistics
    mean, std = feats["train"]["c_mean"].mean(0), feats["train"]["c_mean"].std(0) + 1e-6
    for split in ("train", "test"):
        feats[split]["c_std"] = (feats[split]["c_mean"] - mean) / std
    for name in ("z_mean", "c_last", "c_std"):
        out[name] = knn_accuracy(
            feats["train"][name],
            splits.train.labels,
            feats["test"][name],
            splits.test.labels,
            k=5,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", nargs="+", default=["GunPoint"])
    parser.add_argument("--grid", nargs="+", default=["epochs=10"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()
    print(
        "| set | config | seed | learned kNN | learned linear | random kNN | random linear "
        "| raw kNN | z-mean kNN | c-last kNN | standardised kNN | random standardised kNN | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        source = name if ":" in name else f"ucr:{name}"
        train_size = len(load_data(source).train)
        for line in args.grid:
            sets = dict(kv.split("=", 1) for kv in line.split(",") if kv)
            epochs = int(sets.pop("epochs", 10))
            for seed in args.seeds:
                start = time.process_time()
                with tempfile.TemporaryDirectory() as tmp:
                    cfg = selfsup.make_config(
                        **{
                            "data.source": source,
                            "method.name": "cpc",
                            "train.epochs": epochs,
                            "train.batch_size": min(args.batch_size, train_size),
                            "train.progress": False,
                            "train.eval_every": 0,
                            "train.report": False,
                            "optim.name": "adamw",
                            "optim.lr": args.lr,
                            "eval.protocols": "knn,linear",
                            "eval.knn_k": 5,
                            "train.seed": seed,
                        }
                        | {k: _value(v) for k, v in sets.items()}
                    )
                    ev = selfsup.pretrain(cfg, Path(tmp) / "run").evaluation
                    learned = selfsup.load(Path(tmp) / "run")
                    pools = pooled_knn(learned, source)
                    torch.manual_seed(seed)
                    rand = pooled_knn(build_encoder(learned.spec), source)
                s, r, raw = ev["selfsup"], ev["random"], ev["raw_signal"]
                print(
                    f"| {name} | {line} | {seed} | {s['knn_top1']:.3f} | "
                    f"{s['linear_top1']:.3f} | {r['knn_top1']:.3f} | {r['linear_top1']:.3f} | "
                    f"{raw['knn_top1']:.3f} | {pools['z_mean']:.3f} | {pools['c_last']:.3f} | "
                    f"{pools['c_std']:.3f} | {rand['c_std']:.3f} | "
                    f"{time.process_time() - start:.0f} |",
                    flush=True,
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
