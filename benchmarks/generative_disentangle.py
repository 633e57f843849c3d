"""Content/style disentanglement on the generated sources with known factors: factor_knn of the
content code and of the style code, beside the random encoders and the raw input.

One training per source (`method.export=content`); the style code is the same trained method's
style encoder, rebuilt from the run's checkpoint and evaluated by the same suite. Prints a
markdown table; run by hand, pinned to one thread, e.g.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python benchmarks/generative_disentangle.py
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

import selfsup
from selfsup.config import Config
from selfsup.data.registry import source_modality
from selfsup.evaluate.suite import evaluate_with_baselines, evaluation_data
from selfsup.modalities import get_modality
from selfsup.run import build_method
from selfsup.run_data import load_run_splits

SOURCES = {"styled-digits": ("digit", "colour"), "styled-waves": ("shape", "amplitude", "pitch")}


def style_evaluation(cfg: Config, run: Path) -> dict:
    """The trained method's style code (the run `cfg` made in `run`), evaluated by the same
    suite beside its random encoder and the raw input."""
    params = {**cfg.method.params, "export": "style"}
    cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, params=params))
    splits = load_run_splits(cfg, run)
    modality = get_modality(source_modality(cfg.data.source))
    method = build_method(cfg, modality, splits.train)
    method.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=False)["method"])
    data = evaluation_data(splits, cfg.data.source)
    return evaluate_with_baselines(method.exported().eval(), modality, data, cfg, ("factor_knn",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--set", nargs="*", default=[], help="method.KEY=VALUE settings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.sources:
            start = time.time()
            cfg = selfsup.make_config(
                **{
                    "method.name": "disentangle",
                    "data.source": source,
                    "train.epochs": args.epochs,
                    "train.batch_size": args.batch_size,
                    "train.progress": False,
                    "train.report": False,
                    "eval.protocols": "factor_knn",
                }
                | dict(item.split("=", 1) for item in args.set)
            )
            run = Path(tmp) / source
            content = selfsup.pretrain(cfg, run).evaluation
            style = style_evaluation(cfg, run)
            wall = time.time() - start
            factors = SOURCES[source]
            rows = {
                "content code": content["selfsup"],
                "style code": style["selfsup"],
                "random content encoder": content["random"],
                "random style encoder": style["random"],
                next(k for k in content if k.startswith("raw")): content[
                    next(k for k in content if k.startswith("raw"))
                ],
            }
            head = " | ".join(f"{f} kNN (%)" for f in factors)
            lines += [
                f"\n{source}: {args.epochs} epochs at batch {args.batch_size}, {wall:.0f} s "
                "wall (train + both evaluations; a shared machine: not a speed figure)\n",
                f"| code | {head} |",
                "|---" * (len(factors) + 1) + "|",
            ]
            for name, figures in rows.items():
                cells = " | ".join(f"{100 * figures[f'factor_knn/{f}_top1']:.2f}" for f in factors)
                lines.append(f"| {name} | {cells} |")
            chance = " | ".join(
                f"{100 * content['selfsup'][f'factor_chance/{f}_top1']:.2f}" for f in factors
            )
            lines.append(f"| chance (most frequent level) | {chance} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
