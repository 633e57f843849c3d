"""Compare runs side by side: the config keys that differ between them and their evaluation
figures, as one Markdown table (which also reads well in a terminal)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from selfsup.config import flatten
from selfsup.errors import SelfsupError
from selfsup.units import column, format_figure

# eval.json baseline rows (images; text) and the headline figures shown for them
BASELINES = ("random", "raw_pixels", "as_loaded", "untrained", "tfidf")
HEADLINES = ("knn_top1", "sts_spearman")
MISSING = "-"


def _load_run(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(flat dotted config, eval.json or {}) of a run directory."""
    config_path = run / "config.json"
    if not config_path.is_file():
        what = "does not exist" if not run.exists() else "is not a run directory (no config.json)"
        raise SelfsupError(f"{run} {what}; pass run directories made by `selfsup pretrain`")
    try:
        config = json.loads(config_path.read_text())["config"]
    except (ValueError, KeyError, TypeError):
        raise SelfsupError(f"{config_path} is not a selfsup run config") from None
    evaluation: dict[str, Any] = {}
    eval_path = run / "eval.json"
    if eval_path.is_file():
        try:
            evaluation = json.loads(eval_path.read_text())
        except ValueError:
            raise SelfsupError(f"{eval_path} is not valid JSON") from None
    return flatten(config, whole=()), evaluation if isinstance(evaluation, dict) else {}


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|")


def _run_names(runs: list[Path]) -> list[str]:
    """Each run's folder name, or its full path where two runs share a name."""
    names = [r.name or str(r) for r in runs]
    return [str(r) if names.count(n) > 1 else n for r, n in zip(runs, names, strict=True)]


def compare_runs(runs: list[str | Path]) -> str:
    """A Markdown table: one row per run, the config keys whose values differ across the runs,
    then the learned encoder's evaluation figures and the baselines' kNN accuracy."""
    if not runs:
        raise SelfsupError("compare needs at least one run directory")
    paths = [Path(r) for r in runs]
    loaded = [_load_run(p) for p in paths]
    keys = list(dict.fromkeys(k for config, _ in loaded for k in config))
    sections = list(dict.fromkeys(k.split(".")[0] for k in keys))
    keys.sort(key=lambda k: sections.index(k.split(".")[0]))  # stable: keeps each section together
    differing = [
        k
        for k in keys
        if len({json.dumps(c.get(k, MISSING), sort_keys=True) for c, _ in loaded}) > 1
    ]
    figures = list(dict.fromkeys(k for _, e in loaded for k in e.get("selfsup", {})))
    baselines = [
        (b, h) for b in BASELINES for h in HEADLINES if any(h in e.get(b, {}) for _, e in loaded)
    ]
    header = ["run", *differing, *map(column, figures), *(f"{b} {column(h)}" for b, h in baselines)]
    rows = []
    for name, (config, evaluation) in zip(_run_names(paths), loaded, strict=True):
        row = [_cell(name)]
        row += [_cell(config[k]) if k in config else MISSING for k in differing]
        row += [format_figure(k, evaluation.get("selfsup", {}).get(k)) for k in figures]
        row += [format_figure(h, evaluation.get(b, {}).get(h)) for b, h in baselines]
        rows.append(row)
    return _markdown([header, *rows])


def _markdown(table: list[list[str]]) -> str:
    """Rows padded to aligned columns; text columns left-aligned, figures right-aligned."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    numeric = [all(_is_number(cell) for cell in column[1:]) for column in zip(*table, strict=True)]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric, strict=True)
    ]
    return "\n".join([line(table[0]), line(rule), *(line(r) for r in table[1:])]) + "\n"


def _is_number(cell: str) -> bool:
    try:
        float(cell.removesuffix(" %"))
    except ValueError:
        return cell == MISSING
    return True


def _run_compare(args: argparse.Namespace) -> int:
    table = compare_runs(args.runs)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise SelfsupError(f"{out} already exists; pass --overwrite to replace it or --out FILE")
    print(table, end="")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"written to {out}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Add `selfsup compare RUN1 RUN2 ...` to the command line's subparsers."""
    p = subparsers.add_parser(
        "compare", help="one table of several runs: differing config and evaluation figures"
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--out", default="compare.md", help="Markdown file (default compare.md)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(handler=_run_compare)
