"""Values as users write them (strings from the command line, JSON numbers) converted to the
annotated types of a config dataclass's fields, one clear error naming the key otherwise.

Used by `selfsup.config` for the core sections and by `Method.make_config` for a method's own
parameters, so that both are typed the same way.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from selfsup.errors import SelfsupError


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert `value` (often a string from the command line) to the annotated type."""
    origin, args = get_origin(annotation), get_args(annotation)
    if args and type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], key)
    if origin in (Union, UnionType):  # X | Y: the first that takes the value (bool | tuple)
        for arm in args:
            try:
                return coerce(value, arm, key)
            except SelfsupError:
                continue
        names = " or ".join(getattr(a, "__name__", str(a)) for a in args)
        raise SelfsupError(f"config key {key!r} expects {names}, got {value!r}")
    if origin is tuple or annotation is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise SelfsupError(f"config key {key!r} expects a comma separated list, got {value!r}")
        return tuple(coerce(v, args[0] if args else str, key) for v in value)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise SelfsupError(f"config key {key!r} expects a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise SelfsupError(f"config key {key!r} expects true or false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise SelfsupError(f"config key {key!r} expects a number, got {value!r}")
        try:
            number = float(value) if annotation is float else int(str(value), 0)
        except ValueError:
            raise SelfsupError(
                f"config key {key!r} expects {annotation.__name__}, got {value!r}"
            ) from None
        return number
    if annotation is str:
        return str(value)
    return value


def coerce_params(config_cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """A method's parameters converted to the types of its Config dataclass's fields, exactly
    as the core sections' keys are (`--set method.predictor=no` is False), each bad value
    refused naming its key. Keys that are not fields ("preset", unknown ones) pass unchanged:
    the method's `make_config` names those."""
    hints = get_type_hints(config_cls)
    return {
        key: coerce(value, hints[key], f"method.{key}") if key in hints else value
        for key, value in params.items()
    }
