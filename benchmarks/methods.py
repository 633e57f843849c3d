"""Every registered image method at the same CPU time budget, then kNN (and, if asked, a linear
probe and fine-tuning on a fraction of the labels) on the held-out test set: one markdown table,
with a column of the methods' own held-out figures (a density model's NLL, bits/dim) when any
has them.

Each method trains in its own subprocess (so its peak memory, the subprocess's
`resource.getrusage` maxrss, is its own) for `train.time_budget` minutes, with the settings of
METHOD_SETTINGS below on top of the shared ones (the small convnet, 24 px training views of
CIFAR-10 as in benchmarks/cifar10_budget.py, batch 256), and with its own published optimiser
and augmentation (`Method.optimiser`, `Method.augment_family`): the table names both for each
row. The random encoder and raw pixels rows come from the first method's evaluation (the random
encoder is seeded and the same for all). Methods that train with labels (SupCon) run only with
--supervised and are marked as such.

    python benchmarks/methods.py                             # CIFAR-10 JPEG copy, 5 min each
    python benchmarks/methods.py --methods simclr,triplet --minutes 10 --linear
    python benchmarks/methods.py --linear --finetune 0.01    # kNN, linear, fine-tuning on 1 %
    python benchmarks/methods.py --data digits --seconds 10  # a smoke test on sklearn digits
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# What a method needs on top of SHARED. Nothing about its optimiser or augmentation: each
# trains with its own published setting (the method's defaults, printed in the table).
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    # The self-prediction methods that need a transformer get the CPU-sized ViT (width 128,
    # depth 6; patch 4 at 32 px): the convnet has no patches to mask or to predict in order.
    "mae": {"model.backbone": "vit-mini"},
    "autoregressive": {"model.backbone": "vit-mini-causal"},
    # The generative methods train at their papers' batch: DCGAN, BiGAN, VQ-VAE and AdaIN-VC
    # 128, disentanglement_lib's VAE 64, scikit-learn's RBM 10 (its PCD diverges at the
    # linearly scaled lr of batch 256: docs/methods-generative.md).
    **{name: {"train.batch_size": 128} for name in ("gan", "bigan", "vqvae", "disentangle")},
    "vae": {"train.batch_size": 64},
    "rbm": {"train.batch_size": 10},
}

IMAGE_FIELDS = frozenset({"image", "label", "index"})
MAIN = "main"  # a method that reads the modality's main field (SimCLR) runs on images too


def image_methods(supervised: bool) -> list[str]:
    """Registered methods that read images (and maybe labels or indices), no other modality;
    those that read labels only when `supervised`."""
    from selfsup.methods import available_methods, get_method

    names = []
    for name in available_methods():
        inputs = {("image" if field == MAIN else field) for field in get_method(name).inputs}
        if "image" in inputs and inputs <= IMAGE_FIELDS and (supervised or "label" not in inputs):
            names.append(name)
    return names


def is_supervised(name: str) -> bool:
    from selfsup.methods import get_method

    return "label" in get_method(name).inputs


def child(spec: str) -> None:
    """Run one method (in this subprocess) and print its figures as one RESULT line."""
    import selfsup
    from selfsup.modalities import get_modality

    job = json.loads(spec)
    cfg = selfsup.make_config(**job["overrides"])
    result = selfsup.pretrain(cfg, job["out"])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    # What it trained with: the resolved optimiser as saved, the recipe as the run chose it.
    optim = json.loads((result.run_dir / "config.json").read_text())["config"]["optim"]
    recipe = get_modality("image").augment(cfg, result.encoder.spec).recipe.name
    own = result.run_dir / "method_figures.json"  # a generative method's held-out NLL etc.
    own_figures = json.loads(own.read_text())["figures"] if own.is_file() else {}
    print(
        "RESULT "
        + json.dumps(
            {
                "evaluation": result.evaluation,
                "epochs": result.epochs,
                "images_per_second": result.samples_per_second,
                "peak_rss_mib": peak_kib / 1024,
                "optimiser": f"{optim['name']} {optim['lr']:g}",
                "augmentation": recipe,
                "method_figures": own_figures,
                # the encoder it trained: a backbone, or a kind of its own (rbm, nade, adain)
                "encoder": getattr(result.encoder.spec, "backbone", result.encoder.spec.kind),
            }
        )
    )


def finished(overrides: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """The RESULT of an earlier run of this method in the same runs folder with the same
    settings (so that an interrupted benchmark, or one run in parts, goes on), else None."""
    log, job = out.parent / f"{out.name}.log", out.parent / f"{out.name}.job.json"
    if not (log.exists() and job.exists()):
        return None
    # Whether a run also evaluated the baselines depends on the order of the list: not a setting.
    saved = {k: v for k, v in json.loads(job.read_text()).items() if k != "eval.baselines"}
    if saved != {k: v for k, v in overrides.items() if k != "eval.baselines"}:
        return None
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return None


def run_method(overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train and evaluate one method in a subprocess; its RESULT, or an "error" entry."""
    (out.parent / f"{out.name}.job.json").write_text(json.dumps(overrides, sort_keys=True))
    job = json.dumps({"overrides": overrides, "out": str(out)})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", job],
        capture_output=True,
        text=True,
    )
    (out.parent / f"{out.name}.log").write_text(proc.stdout + proc.stderr)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
    return {"error": f"exit {proc.returncode}: {tail[:120]}"}


def percent(row: dict[str, Any] | None, key: str) -> str:
    value = (row or {}).get(key)
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else "-"


def finetuned(row: dict[str, Any] | None) -> str:
    """Fine-tuned accuracy with, in brackets, the same architecture from random init."""
    return f"{percent(row, 'finetune_top1')} ({percent(row, 'finetune_scratch_top1')})"


def table(
    results: dict[str, dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
    backbones: dict[str, str],
    linear: bool,
    finetune: bool,
    each: bool = False,
) -> list[str]:
    """The markdown table: one row per method, then the random encoder and raw pixels of each
    backbone the methods used; with `each`, every method's own random encoder under its row
    (methods that build an encoder of their own: RBM, NADE, the VAE's)."""
    head = ["method", "backbone", "optimiser (lr per 256)", "augmentation", "kNN top-1 (%)"]
    head += ["linear top-1 (%)"] if linear else []
    head += ["fine-tune top-1 (%) (from random init)"] if finetune else []
    own = any(res.get("method_figures") for res in results.values())
    head += ["the method's held-out figures"] if own else []
    head += ["epochs", "images/s", "peak RSS (MiB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in results.items():
        label = f"{name} (supervised: trained with labels)" if is_supervised(name) else name
        if "error" in res:
            failed = "not run" if res["error"] == "not run" else f"failed ({res['error']})"
            cells = [label, backbones[name], "-", "-", failed]
            cells += ["-"] * (len(head) - 5)
        else:
            row = res["evaluation"].get("selfsup")
            cells = [
                label,
                res.get("encoder", backbones[name]),
                res.get("optimiser", "?"),
                res.get("augmentation", "?"),
            ]
            cells += [percent(row, "knn_top1")]
            cells += [percent(row, "linear_top1")] if linear else []
            cells += [finetuned(row)] if finetune else []
            figures = res.get("method_figures") or {}
            cells += [", ".join(f"{k} {v:.4g}" for k, v in figures.items()) or "-"] if own else []
            cells += [
                f"{res['epochs']:.2f}",
                f"{res['images_per_second']:.0f}",
                f"{res['peak_rss_mib']:.0f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
        random_row = res.get("evaluation", {}).get("random") if each else None
        if random_row:
            cells = [f"{name}: its random encoder", res.get("encoder", "?"), "-", "-"]
            cells += [percent(random_row, "knn_top1")]
            cells += [percent(random_row, "linear_top1")] if linear else []
            cells += ["-"] if finetune else []
            cells += ["-"] if own else []
            lines.append("| " + " | ".join([*cells, "-", "-", "-"]) + " |")
    for i, (backbone, rows) in enumerate(baselines.items()):
        if each and i:
            break  # the raw pixels once; the random encoders are under their methods
        for key, label in (("random", "random encoder"), ("raw_pixels", "raw pixels")):
            if key == "raw_pixels" and i:
                continue  # the same pixels whatever the backbone: one row
            row = rows.get(key)
            cells = [label, backbone if key == "random" else "-", "-", "-"]
            cells += [percent(row, "knn_top1")]
            cells += [percent(row, "linear_top1")] if linear else []
            cells += ["-"] if finetune else []
            cells += ["-"] if own else []
            lines.append("| " + " | ".join([*cells, "-", "-", "-"]) + " |")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="budget per method")
    parser.add_argument("--seconds", type=float, default=None, help="budget per method (smoke)")
    parser.add_argument("--methods", default=None, help="a,b,c (default: every image method)")
    parser.add_argument("--supervised", action="store_true", help="also methods with labels")
    parser.add_argument("--linear", action="store_true", help="also a linear probe")
    parser.add_argument(
        "--random-each",
        action="store_true",
        help="each method's own random encoder under its row (methods that build their own)",
    )
    parser.add_argument(
        "--finetune",
        type=float,
        default=None,
        metavar="FRACTION",
        help="also fine-tune on this stratified fraction of the labels (e.g. 0.01)",
    )
    parser.add_argument("--data", default="cifar10", help="cifar10 (the JPEG copy) or a source")
    parser.add_argument("--data-root", type=Path, default=Path("data/cifar10-jpg"))
    parser.add_argument("--tarball", type=Path, default=None)
    parser.add_argument("--backbone", default="convnet")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--crop-size", type=int, default=None, help="default 24 on CIFAR-10")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder (methods finished there are kept)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--table-only", action="store_true", help="train nothing: the table of what --out holds"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child(args.child)
        return
    names = args.methods.split(",") if args.methods else image_methods(args.supervised)
    known = image_methods(supervised=True)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"not image methods: {', '.join(unknown)}; valid: {', '.join(known)}")
    crop = args.crop_size
    if args.data == "cifar10":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from cifar10_budget import DEFAULT_TARBALL, cifar10_folder

        source = f"folder:{cifar10_folder(args.tarball or DEFAULT_TARBALL, args.data_root)}"
        crop = crop or 24  # as benchmarks/cifar10_budget.py (FixRes: train small, test at 32)
    else:
        source = args.data
    minutes = args.seconds / 60 if args.seconds is not None else args.minutes
    shared: dict[str, Any] = {
        "data.source": source,
        "model.backbone": args.backbone,
        "train.time_budget": minutes,
        "train.batch_size": args.batch_size,
        "train.device": args.device,
        "train.eval_every": 0,
        "train.progress": False,
        "train.report": False,
        "eval.protocols": ",".join(
            ["knn"] + (["linear"] if args.linear else []) + (["finetune"] if args.finetune else [])
        ),
        "eval.knn_k": 200,
        "eval.knn_t": 0.1,
    }
    if args.finetune:
        shared["eval.finetune_fraction"] = args.finetune
    if crop:
        shared["method.crop_size"] = crop
    for item in args.set:
        key, _, value = item.partition("=")
        shared[key] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    root = args.out or Path(f"runs/methods-{time.strftime('%Y%m%d-%H%M%S')}")
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    baselines: dict[str, dict[str, Any]] = {}  # per backbone
    backbones: dict[str, str] = {}
    for name in names:
        overrides = {**shared, "method.name": name, **METHOD_SETTINGS.get(name, {})}
        backbone = backbones[name] = overrides["model.backbone"]
        # The first success on each backbone also evaluates its random encoder and raw pixels.
        overrides["eval.baselines"] = args.random_each or backbone not in baselines
        res = finished(overrides, root / name)
        if res is None and args.table_only:
            res = {"error": "not run"}
        elif res is None:
            print(f"{name}: training {minutes:g} min ...", flush=True)
            res = run_method(overrides, root / name)
        else:
            print(f"{name}: finished earlier in {root}", flush=True)
        results[name] = res
        if "error" not in res and backbone not in baselines and "random" in res["evaluation"]:
            baselines[backbone] = {k: v for k, v in res["evaluation"].items() if k != "selfsup"}
        print(f"{name}: {res.get('error') or 'done'}", flush=True)
    lines = table(results, baselines, backbones, args.linear, bool(args.finetune), args.random_each)
    where = next(iter(baselines.values()), {}).get("queries", "?")
    lines += [
        "",
        f"Budget {minutes:g} min per method, data {source}; kNN k=200 T=0.1; {where}. Each "
        "method trains with its own published optimiser (lr per 256 samples, scaled to the "
        "batch) and its family's augmentation recipe.",
    ]
    if args.finetune:
        lines[-1] += f" Fine-tuning on {100 * args.finetune:g} % of the training labels."
    (root / "table.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
