"""The run directory: its file names, and the rule that an existing run is never clobbered."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory."""

    root: Path

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


def default_run_name(method: str, source: str) -> str:
    """`runs/<method>-<dataset>-<time>`: a fresh name, so a default run never meets an old one."""
    dataset = source.split(":", 1)[0]
    return f"runs/{method}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_dir(path: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Raise the error `prepare_run_dir` would raise, touching nothing (to fail before work)."""
    root = Path(path)
    if resume and overwrite:
        raise SelfsupError("--resume and --overwrite contradict each other; pick one")
    if resume and not RunDir(root).checkpoint.is_file():
        raise SelfsupError(f"cannot resume: {RunDir(root).checkpoint} does not exist")
    if not resume and not overwrite and root.exists() and any(root.iterdir()):
        raise SelfsupError(
            f"run directory {root} already exists; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )


def prepare_run_dir(path: str | Path, *, resume: bool, overwrite: bool) -> RunDir:
    """Create the run directory, refusing to touch an existing one unless asked.

    `resume` continues the run in place (its checkpoint must exist); `overwrite` deletes it first.
    """
    root = Path(path)
    check_run_dir(root, resume=resume, overwrite=overwrite)
    if resume:
        return RunDir(root)
    if root.exists() and any(root.iterdir()):
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return RunDir(root)
