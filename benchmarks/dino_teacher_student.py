"""DINO on digits with the slow test's settings (tests/methods/test_dino.py): kNN top-1 of the
exported teacher beside the student of the same run (read back from the checkpoint), and the
random encoder. Run by hand; prints one line per encoder.

    python benchmarks/dino_teacher_student.py --epochs 20
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import selfsup
from selfsup.checkpoint import load_checkpoint
from selfsup.data import load_data
from selfsup.embedding import encode_rows
from selfsup.evaluate import knn_accuracy

SETTINGS = {
    "method.name": "dino",
    "method.out_dim": 256,
    "method.hidden_dim": 256,
    "method.bottleneck_dim": 64,
    "method.local_crops": 2,
    "optim.name": "adamw",
    "optim.lr": 1e-3,
    "optim.weight_decay": 0.04,
    "train.batch_size": 128,
    "train.progress": False,
    "train.eval_every": 0,
    "train.report": False,
    "eval.protocols": "knn",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp(prefix="dino-")) / "run"
    result = selfsup.pretrain(selfsup.make_config(**SETTINGS, **{"train.epochs": args.epochs}), run)
    teacher, student = selfsup.load(run), selfsup.load(run)
    state = load_checkpoint(run / "checkpoint.pt")["method"]
    prefix = "encoder."
    student.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    digits = load_data("digits")

    def features(encoder, part):
        return encode_rows(encoder, {"image": part.images}, lambda batch: batch["image"])

    for name, encoder in (("teacher (exported)", teacher), ("student", student)):
        bank, queries = features(encoder, digits.train), features(encoder, digits.test)
        top1 = knn_accuracy(bank, digits.train.labels, queries, digits.test.labels)
        print(f"{args.epochs} epochs, {name}: kNN top-1 {top1:.3f}")
    print(f"random encoder: kNN top-1 {result.evaluation['random']['knn_top1']:.3f}")


if __name__ == "__main__":
    main()
