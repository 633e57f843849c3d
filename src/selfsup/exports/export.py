"""Export a run's encoder: check everything (the run has an encoder, the format exists, the
encoder can take it, nothing would be overwritten unasked), then write the format's files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from selfsup.errors import SelfsupError
from selfsup.export import SPEC, WEIGHTS, load
from selfsup.exports.formats import ExportOptions, get_format
from selfsup.exports.model_card import CARD, write_model_card

EXPORTS_DIR = "exports"  # RUN/exports/FORMAT is where an export goes unless --out says
MARKER = "selfsup_export.json"  # what an export wrote and from which run: --overwrite reads it


def export(
    run: str | Path,
    format: str,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    opset: int | None = None,
    fp16: bool = False,
) -> Path:
    """Write the encoder of `run` in `format`; return the folder written.

    `out` is a folder (default RUN/exports/FORMAT); for ONNX it may name the `.onnx` file, the
    files that go with the graph then lie beside it. An existing output is refused unless
    `overwrite`, which replaces only the paths this export writes."""
    fmt = get_format(format)
    if fp16 and format != "onnx":
        raise SelfsupError("--fp16 applies to --format onnx only")
    if opset is not None and format != "onnx":
        raise SelfsupError("--opset applies to --format onnx only")
    run = Path(run)
    encoder = load_run_encoder(run)
    folder, filename = _target(run, format, out)
    options = ExportOptions(opset=opset, fp16=fp16, filename=filename)
    module = fmt.load()
    module.check(encoder, options)
    planned = [*module.paths(folder, encoder, options), folder / CARD, folder / MARKER]
    _keep_foreign_card(folder)
    _make_room(planned, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    module.write(encoder, folder, options)
    write_model_card(run, folder, format, encoder, module)
    written = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MARKER
    )
    record = {"format": format, "run": run.name, "kind": encoder.kind, "files": written}
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return folder


def load_run_encoder(run: Path) -> Any:
    """The run's exported encoder, or one error saying why there is none yet."""
    if not run.is_dir():
        raise SelfsupError(f"{run} is not a run directory; pass one made by `selfsup pretrain`")
    if not (run / SPEC).is_file() or not (run / WEIGHTS).is_file():
        started = (run / "checkpoint.pt").is_file() or (run / "config.json").is_file()
        raise SelfsupError(
            f"{run} has no encoder to export yet: "
            + (
                "its training stopped before it exported one; finish it with "
                f"`selfsup pretrain --resume --out {run}`, then export"
                if started
                else "it holds no run; train one with `selfsup pretrain --out RUN`"
            )
        )
    return load(run)


def _target(run: Path, format: str, out: str | Path | None) -> tuple[Path, str | None]:
    """(folder, graph file name): `out` is a folder, or for ONNX possibly the .onnx file."""
    if out is None:
        return run / EXPORTS_DIR / format, None
    out = Path(out)
    if out.suffix == ".onnx":
        if format != "onnx":
            raise SelfsupError(f"--out {out} names an ONNX file; --format {format} writes a folder")
        return out.parent, out.name
    if out.exists() and not out.is_dir():
        raise SelfsupError(f"--out {out} is a file; --format {format} writes a folder")
    return out, None


def _keep_foreign_card(folder: Path) -> None:
    """Refuse, even with --overwrite, a README.md that no export wrote (a project's own, beside
    an --out X.onnx): the model card would replace it."""
    card = folder / CARD
    if not card.is_file():
        return
    try:
        written = json.loads((folder / MARKER).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        written = []
    if CARD not in written:
        raise SelfsupError(
            f"{card} exists and no selfsup export wrote it; the export writes its model card "
            "there. Choose another --out (an empty folder)"
        )


def _make_room(paths: list[Path], overwrite: bool) -> None:
    """Refuse to replace what exists unless asked; when asked, remove exactly those paths (a
    folder only when an earlier export wrote it: a user's own folder is never emptied)."""
    present = [p for p in paths if p.exists() and not (p.is_dir() and not any(p.iterdir()))]
    present = [p for p in present if not any(q in p.parents for q in present)]  # the outermost
    foreign = [p for p in present if p.is_dir() and not (p / MARKER).is_file()]
    if foreign and overwrite:
        raise SelfsupError(
            f"{foreign[0]} holds files that no selfsup export wrote; --overwrite replaces only "
            "an earlier export. Choose another --out"
        )
    if present and not overwrite:
        raise SelfsupError(
            f"{', '.join(map(str, present))} already exist"
            + ("s" if len(present) == 1 else "")
            + "; pass --overwrite to replace "
            + ("it" if len(present) == 1 else "them")
            + ", or choose another --out"
        )
    for path in present:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
