"""Training metrics: one JSON object per line in the run directory, mirrored to TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only metrics file (`metrics.jsonl`) plus TensorBoard scalars.

    Only rank zero writes; other ranks get a logger whose `log` does nothing.
    """

    def __init__(self, path: Path | None, tensorboard_dir: Path | None = None):
        self.path = path
        self._writer = None
        if path is not None and tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(tensorboard_dir))

    def log(self, record: dict[str, Any]) -> None:
        """Write `record` (must hold `step`); numbers also go to TensorBoard under `kind/key`."""
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            kind = record.get("kind", "train")
            for key, value in record.items():
                if key not in ("step", "kind") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{kind}/{key}", value, record["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics file (empty if the file does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_after(path: Path, step: int) -> None:
    """Drop records logged after `step` (a resumed run re-logs them)."""
    if not path.is_file():
        return
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
