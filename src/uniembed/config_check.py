"""The type and range checker behind :mod:`uniembed.config_schema`: a value against a dataclass or typing form.

``check(value, expected, where)`` walks dataclasses (unknown and missing keys named), unions, lists and
dicts, and ``Annotated[T, Range(...)]`` (:mod:`uniembed.ranges`): T first, then the range; every error
names the full key ``where``.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Annotated, Any, Union

from .ranges import Range


class ConfigTypeError(ValueError):
    """A config value that does not match its schema."""


class ConfigRangeError(ConfigTypeError):
    """A value of the right type outside its declared range (or a non-finite float)."""


def check(value: Any, expected: Any, where: str) -> None:
    """Raise ConfigTypeError unless ``value`` fits the type ``expected`` (a dataclass, a typing form or a class);
    ``Annotated[T, Range(...)]``: T, then the range (ConfigRangeError)."""
    if dataclasses.is_dataclass(expected):
        _check_dataclass(value, expected, where)
        return
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any:
        return
    if origin is Annotated:
        check(value, args[0], where)
        problem = next(filter(None, (b.violation(value) for b in args[1:] if isinstance(b, Range))), None)
        if problem:
            raise ConfigRangeError(f"{where}: {problem}, got {value!r}")
        return
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own, precise message
            check(value, options[0], where)
            return
        problems = []
        for option in options:
            try:
                check(value, option, where)
                return
            except ConfigTypeError as exc:
                problems.append((option, exc))
        sections = [exc for option, exc in problems if isinstance(exc, ConfigRangeError) or isinstance(value, dict) and
                    (dataclasses.is_dataclass(option) or typing.get_origin(option) is dict)]
        raise sections[0] if sections else ConfigTypeError(_message(where, value, expected))
    if origin is list:
        if not isinstance(value, list):
            raise ConfigTypeError(_message(where, value, expected))
        for i, item in enumerate(value):
            check(item, args[0], f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigTypeError(_message(where, value, expected))
        for key, item in value.items():
            check(item, args[1], f"{where}.{key}")
        return
    if expected is type(None):
        ok = value is None
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigRangeError(f"{where}: expected a finite number, got {value!r}")
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigTypeError(_message(where, value, expected))


def _check_dataclass(value: Any, schema, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigTypeError(f"{where}: expected a section ({schema.__name__}), got {value!r}")
    hints = typing.get_type_hints(schema, include_extras=True)
    fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(schema)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigTypeError(f"{where}: unknown key(s) {unknown}; expected keys of {schema.__name__}: {sorted(fields)}")
    for key, f in fields.items():
        if key not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigTypeError(f"{where}.{key}: required key is missing ({_name(hints[f.name])})")
            continue
        check(value[key], hints[f.name], f"{where}.{key}")


def _name(expected: Any) -> str:
    if dataclasses.is_dataclass(expected):
        return f"a section ({expected.__name__})"
    if isinstance(expected, type):
        return expected.__name__
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is Annotated:
        return " ".join(filter(None, [_name(args[0]), *(b.describe() for b in args[1:] if isinstance(b, Range))]))
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _name(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_name(a) for a in args)}]"
    return str(expected).replace("typing.", "").replace("NoneType", "null")


def _message(where: str, value: Any, expected: Any) -> str:
    return f"{where}: expected {_name(expected)}, got {value!r} ({type(value).__name__})"
