"""Counting and the context encoder (issue 27) at one CPU budget in epochs: kNN and linear
probe of each exported encoder beside its own random encoder and the raw pixels, and the
context encoder's held-out inpainting error beside the mean-fill baseline; a markdown table.

Run by hand, pinned to one thread (the machine is shared; wall times are not speed figures):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/pretext_counting.py \
        --data digits --epochs 20

Each method trains at its defaults (its paper's optimiser, its augmentation family) plus the
`--set`-style overrides given with `--extra method=key=value,...`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import selfsup


def run(method: str, data: str, epochs: int, out: Path, extra: dict) -> tuple[dict, dict, float]:
    """Train `method`; its evaluation, its held-out figures (if any) and the wall time."""
    cfg = selfsup.make_config(
        **{
            "method.name": method,
            "data.source": data,
            "train.epochs": epochs,
            "train.batch_size": 128,
            "train.progress": False,
            "train.report": False,
            "train.eval_every": 0,
            "eval.protocols": "knn,linear",
        }
        | extra
    )
    start = time.perf_counter()
    result = selfsup.pretrain(cfg, out)
    seconds = time.perf_counter() - start
    figures = out / "method_figures.json"
    own = json.loads(figures.read_text())["figures"] if figures.exists() else {}
    return result.evaluation, own, seconds


def overrides(text: str) -> dict[str, dict[str, str]]:
    """ "counting=method.piece_size=8;context_encoder=method.mask=random_block" -> per method."""
    out: dict[str, dict[str, str]] = {}
    for part in filter(None, text.split(";")):
        method, _, setting = part.partition("=")
        key, _, value = setting.partition("=")
        out.setdefault(method, {})[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--methods", default="counting,context_encoder")
    parser.add_argument("--extra", default="", help="METHOD=KEY=VALUE;... settings per method")
    parser.add_argument("--work", type=Path, default=None, help="where runs are written")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="pretext_counting-"))
    work.mkdir(parents=True, exist_ok=True)
    extra = overrides(args.extra)
    rows, raw = [], None
    for method in args.methods.split(","):
        settings = extra.get(method, {})
        evaluation, own, seconds = run(method, args.data, args.epochs, work / method, settings)
        rows.append((method, settings, evaluation, own, seconds))
        raw = evaluation["raw_pixels"]
    print(
        f"\n{args.data}, {args.epochs} epochs at batch 128, one thread; each method beside its "
        "own random encoder; wall times on a shared machine are not speed figures\n"
    )
    print("| encoder | settings | kNN top-1 (%) | linear top-1 (%) | held-out figures | wall (s) |")
    print("|---|---|---|---|---|---|")
    for method, settings, evaluation, own, seconds in rows:
        said = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        figures = ", ".join(f"{k} {v:.4f}" for k, v in own.items())
        learned, random = evaluation["selfsup"], evaluation["random"]
        print(
            f"| {method} | {said} | {100 * learned['knn_top1']:.2f} | "
            f"{100 * learned['linear_top1']:.2f} | {figures} | {seconds:.0f} |"
        )
        print(
            f"| its random encoder | | {100 * random['knn_top1']:.2f} | "
            f"{100 * random['linear_top1']:.2f} | | |"
        )
    assert raw is not None
    print(f"| raw pixels | | {100 * raw['knn_top1']:.2f} | {100 * raw['linear_top1']:.2f} | | |")
    print(f"\nruns in {work}")


if __name__ == "__main__":
    main()
