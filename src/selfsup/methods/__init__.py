"""Self-supervised methods, one file each; importing this package registers them all."""

from selfsup.methods import simclr, simcse  # noqa: F401  (registers)
from selfsup.methods.base import Method
from selfsup.methods.registry import available_methods, get_method

__all__ = ["Method", "available_methods", "get_method"]
