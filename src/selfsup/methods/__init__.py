"""Self-supervised methods, one file each; importing this package registers them all.

Every module of this package other than `base` and `registry` is a method file that registers
itself with `@register`; they are imported here by discovery, so adding a method is adding a file.
"""

import importlib
import pkgutil

from selfsup.methods.base import Method
from selfsup.methods.registry import available_methods, get_method, is_supervised

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "registry") and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Method", "available_methods", "get_method", "is_supervised"]
