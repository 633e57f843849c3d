"""The `selfsup` command line: pretrain, evaluate, embed, report, index, search, compare,
export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from selfsup import compare, distributed, report, search
from selfsup.api import evaluate
from selfsup.config import Config, apply_overrides, load_config_file, parse_scalar
from selfsup.data import describe_sources
from selfsup.data.registry import SOURCES, source_modality
from selfsup.devices import resolve_device
from selfsup.embedding import unit_rows
from selfsup.errors import SelfsupError
from selfsup.evaluate.registry import PROTOCOLS
from selfsup.evaluate.store import evaluation_path
from selfsup.evaluate.suite import format_table
from selfsup.export import load
from selfsup.exports import cli as export_cli
from selfsup.methods import available_methods, get_method
from selfsup.modalities import get_modality
from selfsup.models import available_backbones
from selfsup.models.series import SERIES_BACKBONES
from selfsup.run import pretrain
from selfsup.run_data import load_run_splits, run_config

# Command-line flags that are shorthands for config keys.
FLAG_KEYS = {
    "method": "method.name",
    "augment": "method.augment",
    "data": "data.source",
    "data_b": "data.source_b",
    "image_size": "data.image_size",
    "download": "data.download",
    "skip_corrupt": "data.skip_corrupt",
    "backbone": "model.backbone",
    "model": "model.path",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "time_budget": "train.time_budget",
    "seed": "train.seed",
    "device": "train.device",
    "compile": "train.compile",
    "sync_batchnorm": "train.sync_batchnorm",
    "eval_every": "train.eval_every",
    "optimizer": "optim.name",
    "lr": "optim.lr",
    "weight_decay": "optim.weight_decay",
    "temperature": "method.temperature",
    "protocols": "eval.protocols",
    "eval_data": "eval.data",
}


def _pretrain_parser(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="train an encoder on unlabeled data",
        description="Train an encoder. With no arguments: SimCLR on sklearn digits.",
    )
    p.add_argument("--config", help="JSON or TOML file of config sections")
    p.add_argument("--method", help="self-supervised method (see `selfsup methods`)")
    p.add_argument("--data", help="NAME[:PATH] (see `selfsup datasets`); default digits")
    p.add_argument(
        "--data-b",
        metavar="SOURCE",
        help="a second image source, unaligned with --data (cyclegan's domain B)",
    )
    p.add_argument("--backbone", help="image encoder backbone (see `selfsup backbones`)")
    p.add_argument("--model", help="text: a local transformers model folder to start from")
    p.add_argument("--augment", help="augmentation recipe (default: picked for the data)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--time-budget", type=float, help="minutes; the schedule is sized to the clock")
    p.add_argument("--optimizer", choices=["lars", "sgd", "adamw"])
    p.add_argument("--lr", type=float, help="base learning rate for batch 256 (scaled linearly)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--temperature", type=float, help="contrastive temperature")
    p.add_argument("--image-size", type=int, help="resize images (folders of mixed sizes)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--eval-every", type=int, help="epochs between online kNN evaluations")
    p.add_argument("--protocols", help="final evaluation protocols, comma separated")
    p.add_argument(
        "--eval-data",
        metavar="SOURCE",
        help="evaluate on this NAME[:PATH] (a text run: sts:DIR with scored pairs, e.g. STS-B); "
        "the same as --set eval.data=SOURCE",
    )
    p.add_argument("--download", action="store_const", const=True, help="download CIFAR if missing")
    p.add_argument(
        "--skip-corrupt",
        action="store_const",
        const=True,
        help="leave out undecodable images and WAV files (counted) instead of failing",
    )
    p.add_argument("--compile", action="store_const", const=True, help="torch.compile the model")
    p.add_argument(
        "--sync-batchnorm", action="store_const", const=True, help="SyncBatchNorm under DDP"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set optim.warmup=0.1 --set method.proj_dim=256",
    )
    p.add_argument("--out", help="run directory (default runs/<method>-<data>-<time>)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="delete an existing --out first")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _explore_parser(sub) -> None:
    p = sub.add_parser(
        "explore",
        help="a local web page to look at what a run's encoder learned",
        description="Serve a page on this machine: a 2-D map of the held-out samples, their "
        "nearest neighbours, queries, near-duplicates, outliers and per-class kNN accuracy; "
        "two runs side by side. See docs/explore.md.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="one run directory, or two to compare")
    p.add_argument("--data", metavar="SOURCE", help="map this NAME[:PATH] instead of the run's")
    p.add_argument("--port", type=int, default=8765, help="default 8765; 0 picks a free one")
    p.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1: nothing is exposed beyond it"
    )
    p.add_argument("--no-browser", action="store_true", help="print the URL, open no browser")
    p.add_argument("--device", default="cpu")


def _run_explore(args: argparse.Namespace) -> int:
    from selfsup.explore.server import serve  # lazily: only this command needs the server

    return serve(args)


def pretrain_config(args: argparse.Namespace) -> tuple[Config, dict]:
    """The run's Config from `selfsup pretrain` arguments, and the dotted keys the user gave."""
    overrides = load_config_file(args.config) if args.config else {}
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise SelfsupError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_scalar(value)
    if args.no_progress:
        overrides["train.progress"] = False
    return apply_overrides(Config(), overrides), overrides


def _run_pretrain(args: argparse.Namespace) -> int:
    cfg, overrides = pretrain_config(args)
    try:
        pretrain(cfg, args.out, resume=args.resume, overwrite=args.overwrite, overrides=overrides)
    finally:
        distributed.shutdown()  # leave the torchrun process group cleanly, error or not
    return 0


def _prepare_parser(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="decode an image source once into a store that training memory-maps",
        description="Decode SOURCE's images (shorter side to N, then a centre crop) into an "
        "image store at --out, in parallel processes; train on it with --data store:DIR. "
        "Rerunning the same command after an interruption continues where it stopped.",
    )
    p.add_argument("source", metavar="SOURCE", help="folder:DIR or an image NAME[:PATH]")
    p.add_argument("--out", required=True, help="the store's folder (new or empty)")
    p.add_argument("--image-size", type=int, required=True, help="N: images are stored N x N")
    p.add_argument("--workers", type=int, help="decoding processes (default: every CPU core)")
    p.add_argument(
        "--skip-corrupt",
        action="store_true",
        help="leave out undecodable images (counted in the index) instead of failing",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        help="hold out this fraction (stratified by label, seed 0) as the store's test rows; "
        "default 0.2 for a labelled source without a test split, none for an unlabelled one. "
        "0 writes no test split: a run on the store then holds out 20 %% of labelled train "
        "rows itself (in memory), and unlabelled data is evaluated without held-out queries",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from selfsup.data.prepare_source import prepare

    result = prepare(
        args.source,
        args.out,
        args.image_size,
        workers=args.workers,
        skip_corrupt=args.skip_corrupt,
        test_fraction=args.test_fraction,
        progress=not args.no_progress,
    )
    if result.up_to_date:
        print(f"{result.out} is up to date: a store of {args.source} with these settings")
    else:
        print(result.summary())
    print(f"train on it with: selfsup pretrain --data store:{result.out}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    results = evaluate(
        args.run, args.protocol, data=args.data, device=args.device, baselines=args.baselines
    )
    print(format_table(results))
    print(f"written to {evaluation_path(args.run, args.data)}")
    return 0


def _run_embed(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".npy", ".npz"):
        raise SelfsupError(f"--out must end in .npy or .npz, got {out}")
    labels_path = out.with_name(out.stem + "_labels.npy")
    if not args.overwrite and (out.exists() or (out.suffix == ".npy" and labels_path.exists())):
        raise SelfsupError(f"{out} already exists; pass --overwrite to replace it")
    device = resolve_device(args.device)
    cfg = run_config(args.run)
    encoder = load(args.run, device=device)
    source = args.data or cfg.data.source
    modality = get_modality(source_modality(source))
    if (modality.encoder_kind or modality.name) != getattr(encoder, "modality", encoder.kind):
        raise SelfsupError(
            f"{source} holds {modality.name} samples but the run's encoder is a {encoder.kind} "
            f"encoder; pass --data with {encoder.kind} data"
        )
    splits = load_run_splits(cfg, Path(args.run) if args.data is None else None, source=args.data)
    train, test = ("train", splits.train), ("test", splits.test)
    parts = (
        [train]
        if args.split == "train" or splits.test is None
        else ([test] if args.split == "test" else [train, test])
    )
    samples = search.RunSamples(modality, parts)
    features = search.embed_samples(samples, encoder, device)
    unit = bool(getattr(encoder.spec, "normalize", False))  # as selfsup.embed does by default
    if unit:
        features = unit_rows(features)
    labels = None if samples.labels is None else np.asarray(samples.labels, dtype=np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez(out, embeddings=features, **({"labels": labels} if labels is not None else {}))
    else:
        np.save(out, features)
        if labels is not None:
            np.save(labels_path, labels)
    print(
        f"{features.shape[0]} embeddings of dimension {features.shape[1]}"
        + (" (unit length: the model's Normalize module)" if unit else "")
        + f" written to {out}"
        + (f" (labels in {labels_path})" if labels is not None and out.suffix == ".npy" else "")
    )
    return 0


def _run_listing(args: argparse.Namespace) -> int:
    if args.command == "methods":
        rows = [get_method(name) for name in available_methods()]
        rows.sort(key=lambda m: (m.family, m.name))
        print(f"{'method':20s} {'family':32s} {'data':12s} what it learns (paper)")
        for method in rows:
            modalities = ",".join(sorted(method.modalities))
            print(
                f"{method.name:20s} {method.family:32s} {modalities:12s} "
                f"{method.summary} ({method.paper})"
            )
    elif args.command == "backbones":
        print("\n".join(available_backbones()))
        print(
            f"series: {', '.join(SERIES_BACKBONES)} (a method's published one, else chosen by "
            "the series' length; --backbone names another)"
        )
    else:
        print(f"{'source':16s} {'modality':9s} what")
        for name, text in describe_sources().items():
            print(f"{name:16s} {SOURCES[name].modality:9s} {text}")
    return 0


def _protocols_help() -> str:
    """Every registered protocol with what it needs and computes, for `evaluate --help`."""
    return "; ".join(
        f"{p.name} ({', '.join(sorted(p.needs)) or 'any data'}): {p.summary}"
        for p in PROTOCOLS.values()
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="selfsup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _pretrain_parser(sub)
    _prepare_parser(sub)
    e = sub.add_parser("evaluate", help="evaluate a run's encoder beside baselines")
    e.add_argument("run")
    e.add_argument(
        "--protocol",
        help="comma separated (default: the run's protocols): " + _protocols_help(),
    )
    e.add_argument(
        "--data",
        "--eval-data",
        dest="data",
        help="evaluate on this NAME[:PATH] instead of the run's data; written to "
        "RUN/evaluations/NAME.json (eval.json is kept)",
    )
    e.add_argument("--device", default="cpu")
    e.add_argument(
        "--baselines",
        help="true | false | classical embeddings of the raw input beside the random and raw "
        "rows, comma separated: pca,mds,isomap,lle (default: the run's eval.baselines)",
    )
    m = sub.add_parser("embed", help="write embeddings of a dataset with a run's encoder")
    m.add_argument("run")
    m.add_argument("--data", help="NAME[:PATH]; default the run's training data")
    m.add_argument("--split", choices=["train", "test", "all"], default="all")
    m.add_argument("--out", required=True, help="file.npy (+ file_labels.npy) or file.npz")
    m.add_argument("--device", default="cpu")
    m.add_argument("--overwrite", action="store_true")
    for module in (report, search, compare, export_cli):
        module.add_cli(sub)
    _explore_parser(sub)
    for name, text in [
        ("methods", "list the methods"),
        ("backbones", "list the backbones"),
        ("datasets", "list the data sources"),
    ]:
        sub.add_parser(name, help=text)
    return parser


COMMANDS = {
    "pretrain": _run_pretrain,
    "evaluate": _run_evaluate,
    "embed": _run_embed,
    "explore": _run_explore,
    "methods": _run_listing,
    "backbones": _run_listing,
    "datasets": _run_listing,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `selfsup` console script; user errors print one line, no traceback."""
    args = build_parser().parse_args(argv)
    try:
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except SelfsupError as err:
        print(f"selfsup: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
