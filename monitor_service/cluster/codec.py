"""Frozen dataclasses to JSON and back, exactly: how results and per-model state travel through the
cluster's key-value bucket.

Floats keep every bit (Python writes the shortest repr that reads back to the same float, and NaN
and infinities are written as `NaN`/`Infinity`, which Python's json reads back), so a result read
from the bucket equals the one the calculating monitor made. Decoding follows the dataclass's type
hints (nested dataclasses, `X | None`, tuples, lists, dicts, literals), so fields added to
`CalculationResult` or `ModelStatus` travel without touching this module; a field missing from an
older entry takes its default. No pickle: nothing read from the bucket can run code.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

_T = TypeVar("_T")


class DecodeError(ValueError):
    """The JSON does not fit the dataclass (a newer writer's incompatible entry, or damage)."""


def dumps(value: Any) -> bytes:
    return json.dumps(to_jsonable(value), allow_nan=True, separators=(",", ":")).encode()


def loads(cls: type[_T], data: bytes) -> _T:
    try:
        decoded: _T = from_jsonable(cls, json.loads(data))
    except (ValueError, TypeError, KeyError) as exc:
        raise DecodeError(f"not a {cls.__name__}: {exc}") from exc
    return decoded


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return value.item()
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def from_jsonable(tp: Any, data: Any) -> Any:
    """`data` (parsed JSON) as a value of type `tp`."""
    if tp is Any:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise DecodeError(f"{tp.__name__} expects an object, got {type(data).__name__}")
        hints = _hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if f.name in data]
        values = {name: from_jsonable(hints[name], data[name]) for name in names}
        return tp(**values)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        problems = []
        for option in (arg for arg in args if arg is not type(None)):
            try:
                return from_jsonable(option, data)
            except (DecodeError, TypeError, ValueError) as exc:
                problems.append(str(exc))
        raise DecodeError(f"{data!r} fits none of {args}: {problems}")
    if origin is Literal:
        if data not in args:
            raise DecodeError(f"{data!r} is not one of {args}")
        return data
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], item) for item in _list(data))
        return tuple(from_jsonable(arg, item) for arg, item in zip(args, _list(data), strict=True))
    if origin in (list, Sequence):
        return [from_jsonable(args[0] if args else Any, item) for item in _list(data)]
    if origin in (dict, Mapping):
        if not isinstance(data, dict):
            raise DecodeError(f"expected an object, got {type(data).__name__}")
        key_type, value_type = args or (Any, Any)
        return {from_jsonable(key_type, key): from_jsonable(value_type, item) for key, item in data.items()}
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise DecodeError(f"expected a number, got {data!r}")
        return float(data)
    if tp in (int, str, bool):
        if type(data) is not tp:
            raise DecodeError(f"expected {tp.__name__}, got {data!r}")
        return data
    raise DecodeError(f"cannot decode type {tp!r}")


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise DecodeError(f"expected a list, got {type(data).__name__}")
    return data
