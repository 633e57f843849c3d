"""selfsup: learn encoders from unlabeled data, evaluate them, and embed with them.

import selfsup
result = selfsup.pretrain(data__source="digits", train__epochs=20)
encoder = selfsup.load(result.run_dir)              # or an ONNX export: selfsup.load("model.onnx")
features = selfsup.embed(encoder, images_uint8, batch_size=64, normalize=True)
selfsup.export_encoder(result.run_dir, "onnx")      # RUN/exports/onnx/model.onnx

The names are imported when first used (PEP 562), so `import selfsup` is cheap and serving an
ONNX export with `selfsup.load` and `selfsup.embed` never imports torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Config": "selfsup.config",
    "SelfsupError": "selfsup.errors",
    "analogy": "selfsup.api",
    "embed": "selfsup.serving",
    "evaluate": "selfsup.api",
    "load": "selfsup.serving",
    "make_config": "selfsup.api",
    "pretrain": "selfsup.api",
    "run_config": "selfsup.api",
}

__all__ = [*sorted(_LAZY), "export_encoder"]


def export_encoder(
    run: str | Path, format: str, out: str | Path | None = None, **options: Any
) -> Path:
    """Write the encoder of `run` in `format` (onnx, selfsup, ...; `selfsup export --help` lists
    them) and return the folder written: `selfsup export RUN --format F` from Python. `options`:
    overwrite, opset, fp16 (`selfsup.exports.export.export`)."""
    from selfsup.exports.export import export

    return export(run, format, out, **options)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'selfsup' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """`selfsup.evaluate` is the function even after the subpackage `selfsup.evaluate` loads:
    importing a submodule sets it as an attribute of its parent, which would replace the
    function (an eager `from selfsup.api import evaluate` used to rebind it afterwards)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            self.__dict__.pop(name, None)  # back to __getattr__: the function
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
