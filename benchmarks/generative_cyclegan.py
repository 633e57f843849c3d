"""CycleGAN on grey digits (A) and inverted digits (B) at one budget in epochs: the held-out
cycle errors, the translation error against the known target (B's image of an A digit is its
inverse), and kNN / linear of the exported encoder beside the random encoder and raw pixels.

A is scikit-learn's digits (`--data digits`: 1,437 training images, 360 test); B is the same
source inverted (255 - x) and written to an npz in a temporary folder, its rows shuffled (the
run pairs A's and B's rows in a seeded order of its own: nothing tells it which B image is the
inverse of which A image). The translation error is the mean absolute pixel error (in [0, 1]
units) between G_AB(a) and 1 - a over A's 360 held-out images, beside the same error of the
untranslated input (|a - (1 - a)|), of the generator before training and of B's mean image
given for every a (what a generator that learned B's look but nothing of its input would
score). Wall times on a shared machine are not speed figures.

The defaults are the table's first row in docs/methods-generative.md (8 epochs, width 8, 2
blocks, no identity term: inversion is its own inverse, which the identity term fights):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/generative_cyclegan.py
    python benchmarks/generative_cyclegan.py --epochs 20 --width 16 --identity 0.5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import selfsup
from selfsup.data import load_data
from selfsup.modalities import get_modality
from selfsup.models.cyclegan import to_signed
from selfsup.run import build_method
from selfsup.run_data import load_run_splits, run_config


def inverted_digits(path: Path, seed: int = 1) -> str:
    """B: every digit of scikit-learn's set inverted, in a shuffled order, as an npz."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype(np.uint8)[:, None]
    order = np.random.default_rng(seed).permutation(len(x))
    np.savez(path, images=255 - x[order], labels=digits.target[order].astype(np.int64))
    return f"npy:{path}"


def translation_errors(run: Path, trained: bool = True) -> dict[str, float]:
    """|G_AB(a) - (1 - a)| and |a - (1 - a)| over A's held-out images, in [0, 1] units, for the
    run's generator (`trained`) or the same generator at its initialisation."""
    cfg = run_config(run)
    splits = load_run_splits(cfg, run)
    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg, get_modality("image"), splits.train)
    if trained:
        state = torch.load(run / "checkpoint.pt", weights_only=False)["method"]
        method.load_state_dict(state)
    method.eval()
    a = to_signed(splits.test.images)
    with torch.no_grad():
        translated = method.g_ab(a)
    target = -a  # 1 - x in [0, 1] is -x in [-1, 1]
    b_mean = to_signed(load_data(replace(cfg.data, source=cfg.data.source_b)).train.images)
    return {
        "translation_error": float((translated - target).abs().mean() / 2),
        "untranslated_error": float((a - target).abs().mean() / 2),
        "mean_b_error": float((b_mean.mean(0, keepdim=True) - target).abs().mean() / 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=8, help="method.width and disc_width")
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--identity", type=float, default=0.0, help="method.lambda_identity")
    parser.add_argument("--lr", type=float, default=None, help="optim.lr per 256 samples")
    parser.add_argument("--out", type=Path, default=None, help="keep the run here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cyclegan-bench-"))
    run = args.out or folder / "run"
    settings = {
        "method.name": "cyclegan",
        "data.source": "digits",
        "data.source_b": inverted_digits(folder / "inverted.npz"),
        "method.width": args.width,
        "method.disc_width": args.width,
        "method.blocks": args.blocks,
        "method.lambda_identity": args.identity,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.eval_every": 0,
        "train.progress": False,
        "train.report": False,
        "eval.protocols": "knn,linear",
    } | ({"optim.lr": args.lr} if args.lr else {})
    start = time.time()
    selfsup.pretrain(selfsup.make_config(**settings), run)
    minutes = (time.time() - start) / 60
    own = json.loads((run / "method_figures.json").read_text())["figures"]
    evaluation = json.loads((run / "eval.json").read_text())
    before, after = translation_errors(run, trained=False), translation_errors(run)
    print(
        f"\ncyclegan, digits (A) vs inverted digits (B), {args.epochs} epochs, batch "
        f"{args.batch_size}, lr {args.lr or 8e-4:g} per 256, lambda_identity {args.identity:g}, "
        f"width {args.width}, {args.blocks} blocks ({minutes:.1f} min wall on a shared machine)\n"
    )
    print("| figure (held-out, [0, 1] pixel units) | value |")
    print("|---|---|")
    print(f"| cycle error A->B->A | {own['cycle_error_aba']:.4f} |")
    print(f"| cycle error B->A->B | {own['cycle_error_bab']:.4f} |")
    print(f"| translation error |G_AB(a) - (1 - a)| | {after['translation_error']:.4f} |")
    print(f"| ... of the generator before training | {before['translation_error']:.4f} |")
    print(f"| ... of the untranslated input |a - (1 - a)| | {after['untranslated_error']:.4f} |")
    print(f"| ... of B's mean image, the same for every a | {after['mean_b_error']:.4f} |")
    print("\n| encoder | kNN top-1 (%) | linear top-1 (%) |")
    print("|---|---|---|")
    for row in ("selfsup", "random", "raw_pixels"):
        r = evaluation[row]
        print(f"| {row} | {100 * r['knn_top1']:.2f} | {100 * r['linear_top1']:.2f} |")


if __name__ == "__main__":
    main()
