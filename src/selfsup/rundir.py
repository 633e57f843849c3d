"""The run directory: its file names, and the rules that keep a run from clobbering anything.

An existing run is never replaced unless asked (`--overwrite`), and even then only a folder that
holds a selfsup run and nothing else; no run is ever written into, around or over its data.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfsup.errors import SelfsupError

# What a run (and the commands that write into a run directory) may leave in it: the only names
# that `--overwrite` deletes. `checkpoint.pt*.tmp` leftovers of an interrupted save count too.
RUN_FILES = frozenset(
    {
        "config.json",
        "environment.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "encoder.safetensors",
        "encoder.json",
        "eval.json",
        "report.html",
        "index.faiss",
        "index_ids.json",
        "heldout.json",
    }
)
RUN_FOLDERS = frozenset({"tensorboard", "text_encoder", "evaluations"})
# What a run has written when it stops before its first checkpoint (a crash in the first epoch):
# a folder holding only these (and a run's config.json) is started again in place.
BEFORE_CHECKPOINT = frozenset(
    {"config.json", "environment.json", "heldout.json", "metrics.jsonl", "tensorboard"}
)
# Files a resumed run rewrites or appends to: each must be writable, not only the folder.
_REWRITTEN = ("metrics.jsonl", "encoder.safetensors", "encoder.json", "eval.json", "report.html")


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory; `removed` lists what `prepare_run_dir` deleted to overwrite."""

    root: Path
    removed: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def evaluation(self) -> Path:
        return self.root / "eval.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def method_figures(self) -> Path:
        """The method's own held-out figures (`Method.heldout_figures`: a density's NLL)."""
        return self.root / "method_figures.json"


def default_run_name(method: str, source: str) -> str:
    """`runs/<method>-<dataset>-<time>`: a fresh name, so a default run never meets an old one."""
    dataset = source.split(":", 1)[0]
    return f"runs/{method}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def source_paths(source: str) -> list[Path]:
    """The file or folder a `NAME:PATH` data source reads (none for `NAME` alone).

    What a caller passes to `check_run_dir(data_paths=...)` so a run never lands on its data.
    A `#COLUMNS` part (csv:FILE#COL, hf:DIR#image=COL) is not part of the path.
    """
    _, sep, path = source.strip().partition(":")
    if not sep or not path.strip():
        return []
    where = Path(path).expanduser()
    if "#" in path and not where.exists():
        where = Path(path.rpartition("#")[0]).expanduser()
    return [where]


def is_run_dir(path: str | Path) -> bool:
    """Whether `path` holds a selfsup run: a config.json with a "config" key, or a checkpoint."""
    run = RunDir(Path(path))
    if run.checkpoint.is_file():
        return True
    try:
        saved = json.loads(run.config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and "config" in saved


def _is_run_entry(entry: Path) -> bool:
    """Whether `entry` (directly in a run directory) is one a run writes; links never are."""
    if entry.is_symlink():
        return False
    name = entry.name
    if entry.is_dir():
        return name in RUN_FOLDERS
    return name in RUN_FILES or (name.startswith("checkpoint.pt") and name.endswith(".tmp"))


def never_checkpointed(path: str | Path) -> bool:
    """Whether `path` holds a run that stopped before writing its first checkpoint and nothing
    else: only what a run writes before then (BEFORE_CHECKPOINT, a half-written checkpoint's
    .tmp), no encoder, evaluation or report, and no file a run does not write. Such a folder
    can be started again in place: nothing in it is a result."""
    root = Path(path)
    if not root.is_dir() or RunDir(root).checkpoint.exists() or not is_run_dir(root):
        return False
    return all(
        _is_run_entry(entry) and (entry.name in BEFORE_CHECKPOINT or entry.name.endswith(".tmp"))
        for entry in _entries(root)
    )


def _nearest_existing(path: Path) -> Path:
    """`path` itself, or its nearest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()  # pragma: no cover - a relative path's parents end at "."


def _check_writable(root: Path, resume: bool) -> None:
    """Raise unless a run can be written at `root`: a folder (or a path under one) we may write."""
    existing = _nearest_existing(root)
    if not existing.is_dir():
        where = "" if existing == root else f" (it lies under {existing})"
        raise SelfsupError(
            f"--out {root} cannot be a run directory: {existing} is a file, not a folder{where}; "
            "choose another --out"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".selfsup-write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise SelfsupError(
            f"cannot write to {existing} ({err.strerror or err}); choose another --out, "
            "or make the folder writable"
        ) from None
    if resume:
        locked = [n for n in _REWRITTEN if (root / n).exists() and not os.access(root / n, os.W_OK)]
        if locked:
            raise SelfsupError(
                f"cannot resume in {root}: {', '.join(locked)} cannot be written; "
                "make them writable, or start a new run with another --out"
            )


def _entries(root: Path) -> list[Path]:
    """The entries of folder `root`, sorted; an unreadable folder is the user's to fix."""
    try:
        return sorted(root.iterdir())
    except OSError as err:
        raise SelfsupError(
            f"cannot list run directory {root} ({err.strerror or err}); choose another --out"
        ) from None


def _check_data_paths(root: Path, data_paths: Sequence[str | Path]) -> None:
    """Raise if the run directory is, contains, or lies inside one of the run's data paths."""
    here = root.expanduser().resolve()
    for data in data_paths:
        there = Path(data).expanduser().resolve()
        if here == there or here.is_relative_to(there) or there.is_relative_to(here):
            relation = (
                "is"
                if here == there
                else ("lies inside" if here.is_relative_to(there) else "contains")
            )
            raise SelfsupError(
                f"--out {root} {relation} the training data {data}; a run directory must be "
                "apart from its data (runs are written into it, and --overwrite deletes in it): "
                "choose another --out"
            )


def check_run_dir(
    path: str | Path,
    *,
    resume: bool,
    overwrite: bool,
    data_paths: Sequence[str | Path] = (),
) -> None:
    """Raise the error `prepare_run_dir` would raise, deleting nothing (to fail before work).

    `data_paths` are the files and folders the run reads its data from (see `source_paths`);
    the run directory may be none of them, nor contain or lie inside one. The folder (or its
    nearest existing parent) must be a writable folder: a probe file is created and removed.
    """
    root = Path(path)
    run = RunDir(root)
    if resume and overwrite:
        raise SelfsupError("--resume and --overwrite contradict each other; pick one")
    if root.exists() and not root.is_dir():
        raise SelfsupError(f"--out {root} is a file, not a folder; choose another --out")
    _check_data_paths(root, data_paths)
    if resume and not run.checkpoint.is_file():
        if never_checkpointed(root):
            raise SelfsupError(
                f"cannot resume: the run in {root} stopped before it wrote a checkpoint; start "
                "it again in place with the same command without --resume"
            )
        raise SelfsupError(f"cannot resume: {run.checkpoint} does not exist")
    _check_writable(root, resume)
    entries = _entries(root) if root.exists() and not resume else []
    if not entries or (not overwrite and never_checkpointed(root)):
        return  # an empty folder, or a run that never saved a checkpoint: started again
    if not overwrite:
        raise SelfsupError(
            f"run directory {root} already exists; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if not is_run_dir(root):
        raise SelfsupError(
            f"--overwrite refused: {root} is not a selfsup run directory (it has no config.json "
            "or checkpoint.pt written by selfsup), so nothing in it is deleted; choose another "
            "--out, or empty the folder yourself"
        )
    foreign = sorted(entry.name for entry in entries if not _is_run_entry(entry))
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if foreign[10:] else "")
        raise SelfsupError(
            f"--overwrite refused: run directory {root} also holds {shown}, which selfsup did "
            "not write; move them out of the folder (or choose another --out) and run again"
        )


def prepare_run_dir(
    path: str | Path,
    *,
    resume: bool,
    overwrite: bool,
    data_paths: Sequence[str | Path] = (),
) -> RunDir:
    """Create the run directory, refusing to touch an existing one unless asked.

    `resume` continues the run in place (its checkpoint must exist). A folder holding only a
    run that stopped before its first checkpoint (`never_checkpointed`) is cleared and started
    again without `overwrite`: nothing in it is a result. `overwrite` replaces an
    existing run: it deletes only the files and folders a run writes (RUN_FILES, RUN_FOLDERS,
    checkpoint.pt*.tmp), and only in a folder that holds a selfsup run and nothing else. A run
    folder holding anything else (notes, embeddings, a dataset) is refused rather than partly
    cleared: refusing deletes nothing, while keeping the extras would mix an old run's
    leftovers into the new run and still delete anything that happens to share a run file's
    name. The deleted paths are returned in `RunDir.removed`, for the caller to print.
    """
    root = Path(path)
    check_run_dir(root, resume=resume, overwrite=overwrite, data_paths=data_paths)
    if resume:
        return RunDir(root)
    removed: list[Path] = []
    if root.is_dir() and (overwrite or never_checkpointed(root)):
        for entry in _entries(root):  # check_run_dir vouched: each one is a run's
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    root.mkdir(parents=True, exist_ok=True)
    return RunDir(root, tuple(removed))
