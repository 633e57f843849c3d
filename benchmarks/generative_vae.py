"""VAE (beta 1) and beta-VAE (beta 4) on the generated shapes (`--data shapes`, the 32x32 CPU
grid) at one budget in epochs: MIG, DCI disentanglement / completeness / informativeness, the
held-out negative ELBO (nats per image, with its reconstruction and KL terms), and kNN / linear
top-1 on the shape factor (the source's label), beside the random encoder and raw pixels. One
markdown table. Each run is a `selfsup pretrain` subprocess; pin it to one thread yourself:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/generative_vae.py \\
        --epochs 3 --work /tmp/vae-bench
    python benchmarks/generative_vae.py --data fashion-mnist --betas 1 --epochs 2 \\
        --protocols knn,linear      # the VAE's features on Fashion-MNIST

Wall times are printed for completeness; on a shared machine they are not speed figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = (
    ("mig", "MIG"),
    ("dci_disentanglement", "DCI dis."),
    ("dci_completeness", "DCI compl."),
    ("dci_informativeness", "DCI info (%)"),
    ("knn_top1", "kNN shape (%)"),
    ("linear_top1", "linear shape (%)"),
)
PERCENT = {"dci_informativeness", "knn_top1", "linear_top1"}


def run(data: str, beta: float, epochs: int, protocols: str, out: Path) -> tuple[dict, float]:
    """Train and evaluate one VAE; its eval.json and method_figures.json, and the wall time."""
    command = [
        sys.executable,
        "-m",
        "selfsup",
        "pretrain",
        "--method",
        "vae",
        "--data",
        data,
        "--protocols",
        protocols,
        "--out",
        str(out),
        "--set",
        f"method.beta={beta}",
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "train.batch_size=64",
        "--set",
        "train.eval_every=0",
    ]
    start = time.time()
    if not (out / "eval.json").exists():
        subprocess.run(command, check=True)
    seconds = time.time() - start
    evaluation = json.loads((out / "eval.json").read_text())
    own = json.loads((out / "method_figures.json").read_text())["figures"]
    return {"eval": evaluation, "own": own}, seconds


def cell(row: dict, key: str) -> str:
    if key not in row:
        return "-"
    value = row[key]
    return f"{100 * value:.1f}" if key in PERCENT else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--betas", default="1,4")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--protocols", default="knn,linear,disentanglement")
    parser.add_argument("--work", type=Path, default=Path("vae-bench"))
    args = parser.parse_args()
    rows = []
    baselines = None
    for beta in (float(b) for b in args.betas.split(",")):
        result, seconds = run(
            args.data, beta, args.epochs, args.protocols, args.work / f"beta{beta:g}"
        )
        evaluation, own = result["eval"], result["own"]
        name = "VAE" if beta == 1 else f"beta-VAE (beta {beta:g})"
        elbo = f"{own['neg_elbo']:.1f} ({own['reconstruction']:.1f} + {own['kl']:.1f})"
        rows.append((name, evaluation["selfsup"], elbo, f"{seconds / 60:.1f}"))
        baselines = baselines or evaluation
    for key, title in (("random", "random encoder"), ("raw_pixels", "raw pixels")):
        if key in baselines:
            rows.append((title, baselines[key], "-", "-"))
    header = ["encoder", *(t for _, t in COLUMNS), "-ELBO nats (rec + KL)", "wall min"]
    print(f"{args.data}, {args.epochs} epochs, batch 64, held-out queries\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, row, elbo, minutes in rows:
        cells = [cell(row, k) for k, _ in COLUMNS]
        print("| " + " | ".join([name, *cells, elbo, minutes]) + " |")


if __name__ == "__main__":
    main()
