"""Name -> method class; a method file registers itself with `@register`."""

from __future__ import annotations

from typing import Any

from selfsup.errors import SelfsupError

METHODS: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a method available under its `name`."""
    METHODS[cls.name] = cls
    return cls


def available_methods() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> Any:
    """The method class called `name`, or a clear error listing the valid ones."""
    if name not in METHODS:
        raise SelfsupError(
            f"unknown method {name!r}; choose one of: {', '.join(available_methods())}"
        )
    return METHODS[name]


def is_supervised(name: str) -> bool:
    """Whether the method called `name` trains with human labels (`Method.uses_labels`: SupCon's
    classes, supervised SimCSE's NLI labels); False for a name no method has."""
    return name in METHODS and METHODS[name].uses_labels
