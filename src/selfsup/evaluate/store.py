"""Where a run's evaluations are written, and how they are read back.

- `eval.json`: the run's own evaluation (its held-out queries, or `eval.data`), written by
  `selfsup pretrain` and `selfsup evaluate RUN`.
- `evaluations/<name>.json`: `selfsup evaluate RUN --data SOURCE` on other data, one file per
  source, named after it (`folder:/data/noise` -> `folder-data-noise.json`), so evaluating on
  other data never overwrites eval.json. Same shape as eval.json ("queries", one row of figures
  per encoder, "skipped" / "note" lines) plus "data": the SOURCE string as given.

`other_evaluations(run)` reads them back, keyed by source, for the report.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

OWN_FILE = "eval.json"
OTHER_DIR = "evaluations"
_NAME_LIMIT = 100


def source_name(source: str) -> str:
    """A file-name-safe name of a data source: runs of other characters become "-"; a long
    one is cut and keeps a digest of the whole, so that two sources never share a name."""
    name = re.sub(r"[^A-Za-z0-9._]+", "-", source).strip("-.") or "data"
    if len(name) > _NAME_LIMIT:
        digest = hashlib.sha1(source.encode()).hexdigest()[:10]
        name = f"{name[:_NAME_LIMIT]}-{digest}"
    return name


def evaluation_path(run: str | Path, data: str | None = None) -> Path:
    """eval.json for the run's own data (`data` None), else evaluations/<source name>.json; a
    name already taken by another source gets the source's digest appended."""
    root = Path(run)
    if data is None:
        return root / OWN_FILE
    path = root / OTHER_DIR / f"{source_name(data)}.json"
    if path.is_file() and _read(path).get("data") not in (None, data):
        digest = hashlib.sha1(data.encode()).hexdigest()[:10]
        path = path.with_name(f"{path.stem}-{digest}.json")
    return path


def write_evaluation(path: Path, results: dict[str, Any]) -> Path:
    """Write `results` as JSON at `path` (its folder made when needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def other_evaluations(run: str | Path) -> dict[str, dict[str, Any]]:
    """Evaluations of the run's encoder on other data: source -> the file's content, sorted by
    source; unreadable files are left out."""
    folder = Path(run) / OTHER_DIR
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        content = _read(path)
        if isinstance(content.get("data"), str):
            found[content["data"]] = content
    return dict(sorted(found.items()))


def _read(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}
