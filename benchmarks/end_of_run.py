"""What the end of a short text run costs: SimCSE from the packaged MiniLM-L6 on a few thousand
sentences, then `run.finish` (export, evaluation beside the model as loaded and TF-IDF, the
report). Counts the sentences each encoder embeds at the end and times each part. Run by hand;
prints a table.

    python benchmarks/end_of_run.py --sentences 2617 --minutes 1
    python benchmarks/end_of_run.py --sentences 2617 --minutes 1 --max-length 256
    python benchmarks/end_of_run.py --sentences 2617 --minutes 1 --eval-data sts

The sentences are STS-B train sentences (then WordNet's); without --eval-data the run has no
labelled evaluation (the geometry protocol on its own sentences), as in issue 19's trial.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
import tempfile
import time
from pathlib import Path

from simcse_sts import STS, minilm_path, training_corpus

import selfsup

# by name: `selfsup.evaluate` is also the API function
features_module = importlib.import_module("selfsup.embedding")
suite_module = importlib.import_module("selfsup.evaluate.suite")
text_report_module = importlib.import_module("selfsup.modalities.text_report")
report_module = importlib.import_module("selfsup.report")
run_module = importlib.import_module("selfsup.run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=2617)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps (batch 64)")
    parser.add_argument("--minutes", type=float, help="train for this long instead of --steps")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--eval-data", choices=["none", "sts"], default="none")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="end-of-run-"))
    corpus = training_corpus(STS, True, args.sentences, work / "corpus.txt")
    n = sum(1 for _ in corpus.open())
    embedded: dict[tuple[str, int], list[float]] = collections.defaultdict(lambda: [0, 0.0])
    original = features_module.encode_rows

    def counted(encoder, rows, to_input, **kwargs):
        frame = sys._getframe(1)
        while frame.f_code.co_name == "embed":  # the local helpers that call it
            frame = frame.f_back
        caller = frame.f_code.co_name
        start = time.perf_counter()
        out = original(encoder, rows, to_input, **kwargs)
        entry = embedded[(caller, id(encoder))]
        entry[0] += len(out)
        entry[1] += time.perf_counter() - start
        return out

    for module in (features_module, suite_module, text_report_module, report_module):
        module.encode_rows = counted
    phases: dict[str, float] = {}
    finish = run_module.finish

    def timed_finish(*a, **k):
        start = time.perf_counter()
        finish(*a, **k)
        phases["end of run (export, evaluation, report)"] = time.perf_counter() - start

    run_module.finish = timed_finish
    batch = 64
    cfg = selfsup.make_config(
        **{
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "model.path": minilm_path(),
            "model.max_length": args.max_length,
            "optim.name": "adamw",
            "optim.lr": 3e-5 * 256 / batch,
            "optim.weight_decay": 0.0,
            "optim.warmup": 0.0,
            "train.batch_size": batch,
            "train.epochs": max(1, -(-args.steps * batch // n)),
            "train.eval_every": 0,
            "train.amp": False,
            "train.progress": False,
        }
        | ({"eval.data": f"sts:{STS}"} if args.eval_data == "sts" else {})
        | ({"train.time_budget": args.minutes} if args.minutes else {})
    )
    start = time.perf_counter()
    selfsup.pretrain(cfg, work / "run")
    phases["whole run"] = time.perf_counter() - start
    names: dict[int, str] = {}
    print(f"\n{n} training sentences, max length {args.max_length}, eval data {args.eval_data}")
    print(f"{'embedded by':28s} {'encoder':>8s} {'sentences':>10s} {'seconds':>8s}")
    for (caller, ident), (rows, seconds) in embedded.items():
        label = names.setdefault(ident, f"#{len(names) + 1}")
        print(f"{caller:28s} {label:>8s} {rows:10d} {seconds:8.1f}")
    for phase, seconds in phases.items():
        print(f"{phase:48s} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
