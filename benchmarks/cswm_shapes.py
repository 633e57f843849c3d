"""C-SWM on the generated 2-D shapes: Hits@1 and MRR after 1, 5 and 10 steps for the learned
world model, the random (untrained) one and the raw pixels (identity transition), with the
wall time of training.

Run by hand, pinned to one thread:
`OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/cswm_shapes.py`
(defaults: 200 training episodes of 100 steps, 1,000 held-out episodes of 10, hidden 128,
10 epochs at batch 256, Adam 5e-4). `--paper` runs tkipf/c-swm's setting instead (1,000
training episodes, hidden 512, 100 epochs at batch 1,024: hours on a CPU). Prints a markdown
table; on a shared machine the wall time is not a speed figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import selfsup
from selfsup.units import format_figure

ROWS = {
    "selfsup": "C-SWM (learned)",
    "random": "random world model (untrained)",
    "raw_pixels": "raw pixels, identity transition",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-episodes", type=int, default=200)
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam lr per 256 samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paper", action="store_true", help="tkipf/c-swm's full setting")
    parser.add_argument("--out", type=Path, default=None, help="keep the run here")
    args = parser.parse_args()
    if args.paper:
        args.train_episodes, args.hidden_dim, args.epochs, args.batch_size = 1000, 512, 100, 1024
        args.lr = 5e-4 / 4  # 5e-4 at batch 1024
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp()) / "run"
    cfg = selfsup.make_config(
        **{
            "method.name": "cswm",
            "data.source": f"shapes-2d:{args.train_episodes},{args.eval_episodes}",
            "method.hidden_dim": args.hidden_dim,
            "train.epochs": args.epochs,
            "train.batch_size": args.batch_size,
            "optim.lr": args.lr,
            "train.eval_every": 0,
            "train.progress": False,
        }
    )
    start = time.perf_counter()
    selfsup.pretrain(cfg, out)
    wall = time.perf_counter() - start
    results = json.loads((out / "eval.json").read_text())
    keys = [f"transition_step{k}_{m}" for k in (1, 5, 10) for m in ("hit@1", "mrr")]
    heads = [
        f"H@1 {k} step (%)" if m == "hit@1" else f"MRR {k} step"
        for k in (1, 5, 10)
        for m in ("hit@1", "mrr")
    ]
    print(
        f"\nshapes-2d: {args.train_episodes} training episodes x 100 steps, "
        f"{args.eval_episodes} held-out episodes; hidden {args.hidden_dim}, {args.epochs} "
        f"epochs at batch {args.batch_size}, lr {args.lr:g} per 256; {args.threads} thread(s); "
        f"run + evaluation {wall:.0f} s wall (shared machine: not a speed figure)\n"
    )
    print("| row | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for row, title in ROWS.items():
        cells = [format_figure(k, results[row].get(k)) for k in keys]
        print(f"| {title} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
