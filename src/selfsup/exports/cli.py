"""`selfsup export RUN --format F`: the command line of `exports.export.export`."""

from __future__ import annotations

import argparse
from typing import Any

from selfsup.exports.export import export
from selfsup.exports.formats import FORMATS


def add_cli(subparsers: Any) -> None:
    """Add `selfsup export` to the command line's subparsers."""
    p = subparsers.add_parser(
        "export",
        help="write a run's encoder in a format other libraries load, with a model card",
        description="Formats: " + "; ".join(f"{f.name}: {f.summary}" for f in FORMATS.values()),
    )
    p.add_argument("run", help="run directory made by `selfsup pretrain`")
    p.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    p.add_argument(
        "--out", help="folder to write (ONNX: or the .onnx file); default RUN/exports/FORMAT"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export there")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--fp16", action="store_true", help="ONNX: float16 weights and activations")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    folder = export(
        args.run, args.format, args.out, overwrite=args.overwrite, opset=args.opset, fp16=args.fp16
    )
    print(f"{args.format} export of {args.run} written to {folder}")
    return 0
