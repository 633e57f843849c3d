"""GAN (DCGAN features) and BiGAN on Fashion-MNIST at one budget in epochs: kNN and linear
probe of the exported encoder beside the random encoder and the raw pixels; a markdown table.

Run by hand, pinned to one thread (the machine is shared; wall times are not speed figures):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/generative_gan.py \
        --train 10000 --test 2000 --epochs 5

`--train` / `--test` take seeded, class-stratified subsets of Fashion-MNIST's own train and
test splits (written to an .npz under --work), so that a run fits minutes on a CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from subsets import subset_file

import selfsup


def run(method: str, source: str, epochs: int, out: Path, extra: dict) -> tuple[dict, float]:
    cfg = selfsup.make_config(
        **{
            "method.name": method,
            "data.source": source,
            "train.epochs": epochs,
            "train.batch_size": 128,  # DCGAN's
            "train.progress": False,
            "train.eval_every": 0,
            "eval.protocols": "knn,linear",
        }
        | extra
    )
    start = time.perf_counter()
    result = selfsup.pretrain(cfg, out)
    return result.evaluation, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--methods", default="gan,bigan")
    parser.add_argument("--work", type=Path, default=None, help="where runs are written")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="generative_gan-"))
    work.mkdir(parents=True, exist_ok=True)
    source = f"npy:{subset_file(args.data, args.train, args.test, work)}"
    rows = []
    baselines = None
    for method in args.methods.split(","):
        evaluation, seconds = run(method, source, args.epochs, work / method, {})
        learned = evaluation["selfsup"]
        rows.append((method, learned["knn_top1"], learned["linear_top1"], seconds))
        baselines = evaluation
    print(
        f"\n{args.data}, {args.train} training / {args.test} test images (stratified subsets), "
        f"{args.epochs} epochs at batch 128, one thread; wall times on a shared machine are not "
        "speed figures\n"
    )
    print("| encoder | kNN top-1 (%) | linear top-1 (%) | wall (s) |")
    print("|---|---|---|---|")
    for method, knn, linear, seconds in rows:
        print(f"| {method} | {100 * knn:.2f} | {100 * linear:.2f} | {seconds:.0f} |")
    assert baselines is not None
    for name in ("random", "raw_pixels"):
        row = baselines[name]
        print(f"| {name} | {100 * row['knn_top1']:.2f} | {100 * row['linear_top1']:.2f} | |")
    print(f"\nruns in {work}")


if __name__ == "__main__":
    main()
