"""`--format selfsup`: the encoder as selfsup saves it (weights, spec, the kind's assets), in a
folder of its own that `selfsup.load` reads and that can be shared without the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfsup.export import save_encoder
from selfsup.exports.formats import ExportOptions


def check(encoder: Any, options: ExportOptions) -> None:
    """Every encoder kind saves in selfsup's own format."""


def paths(folder: Path, encoder: Any, options: ExportOptions) -> list[Path]:
    return [folder]


def write(encoder: Any, folder: Path, options: ExportOptions) -> list[Path]:
    save_encoder(encoder, folder)
    return sorted(p for p in folder.iterdir())
