"""Request bodies: a JSON envelope `{"rows": [...]}` / `{"labels": [...]}`, or NDJSON, into items.

Used by the API and by log replay, which re-reads the bodies exactly as they were received.

A body is parsed on the event loop, so its parse cost must stay proportional to what a valid body
of the same size costs. `Budget` bounds it before parsing: a valid body holds at most
`max_items` objects of at most `max_fields` scalar members each, so counting its brackets and
colons (bytes.count: milliseconds for 16 MiB) tells whether it can be valid. A body over budget
(a 16 MiB array of empty arrays parses for a second and frees for another tenth) is checked by a
typed decode that stops at the first nested container or surplus item, and refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
import orjson

from monitor_service.errors import (
    BadRequest,
    FieldError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

_Scalar = str | int | float | bool | None

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")


def is_ndjson(content_type: str) -> bool:
    """True for NDJSON media types; raises 415 for anything that is neither JSON nor NDJSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        return True
    if media in JSON_TYPES:
        return False
    raise UnsupportedMediaType(
        f"unsupported content type {media or '(none)'!r}: send application/json or application/x-ndjson"
    )


def count_byte(body: bytes, byte: bytes) -> int:
    """How often `byte` occurs in `body`: numpy counts about 7x faster than bytes.count."""
    return int(np.count_nonzero(np.frombuffer(body, np.uint8) == byte[0]))


@dataclass(frozen=True)
class Budget:
    """What a valid body can hold: `max_items` objects of at most `max_fields` members each."""

    max_items: int
    max_fields: int

    @property
    def containers(self) -> int:
        """Objects and arrays: the items, the envelope and its list, and some slack."""
        return self.max_items + 8

    @property
    def members(self) -> int:
        """Object members (one ':' each): every item with every field plus one unknown, and slack."""
        return self.max_items * (self.max_fields + 1) + 8


def parse_items(body: bytes, ndjson: bool, key: str, budget: Budget | None = None) -> list[Any]:
    """The list of items of a JSON `{key: [...]}` envelope, or one item per NDJSON line.

    Duplicate keys in an object are refused (422): JSON parsers keep the last value silently.
    With a `budget`, a body that cannot be valid is refused before it is parsed (413 for too many
    items, 422 for nested values or too many members).
    """
    if budget is not None:
        _check_budget(body, ndjson, key, budget)
    items = _parse_ndjson(body) if ndjson else _parse_envelope(body, key)
    _reject_duplicate_keys(body, items, ndjson, key, budget)
    return items


def _check_budget(body: bytes, ndjson: bool, key: str, budget: Budget) -> None:
    counts = np.bincount(np.frombuffer(body, np.uint8), minlength=256)  # every byte value, one pass
    containers = int(counts[ord("{")] + counts[ord("[")])
    members = int(counts[ord(":")])
    lines = int(counts[ord("\n")]) + 1 if ndjson else 0
    if containers <= budget.containers and members <= budget.members and lines <= budget.containers:
        return
    # Brackets and colons may sit inside strings: a typed decode tells for sure, and stops early.
    row = Annotated[dict[str, _Scalar], msgspec.Meta(max_length=budget.max_fields + 16)]
    if ndjson:
        chunks = [line for line in body.splitlines() if line.strip()]
        if len(chunks) > budget.max_items:
            raise _too_many(len(chunks), key, budget)
        for number, line in enumerate(chunks):
            _typed_decode(line, row, key, number)
        return
    if key == "columns":
        column = Annotated[list[_Scalar], msgspec.Meta(max_length=budget.max_items)]
        fields = Annotated[dict[str, column], msgspec.Meta(max_length=budget.max_fields + 16)]
        _typed_decode(body, dict[str, fields], key, None)
        return
    envelope = dict[str, Annotated[list[row], msgspec.Meta(max_length=budget.max_items)]]
    _typed_decode(body, envelope, key, None)


_PATH_INDEX = re.compile(r"\$(?:\[\.\.\.\])?\[(\d+)\]")


def _typed_decode(body: bytes, kind: Any, key: str, line: int | None) -> None:
    try:
        msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "length <=" in message and line is None and "$[...][" not in message:
            raise _too_many(None, key, None) from None
        match = _PATH_INDEX.match(message.rpartition(" - at `")[2])
        index = line if line is not None else (int(match.group(1)) if match else None)
        where: tuple[str | int, ...] = ("body", key) if index is None else ("body", key, index)
        raise ValidationFailed(
            [
                FieldError(
                    where,
                    "Each item should be an object of at most one value (number, string, boolean or "
                    "null) per column; this body holds more than any valid batch: " + message,
                    "too_complex",
                )
            ]
        ) from None
    except msgspec.DecodeError as exc:
        where_line = f"line {line + 1} " if line is not None else "body "
        raise BadRequest(f"{where_line}is not valid JSON: {exc}") from None


def _too_many(count: int | None, key: str, budget: Budget | None) -> PayloadTooLarge:
    limit = (
        f" exceed the limit of {budget.max_items} per request" if budget else " exceed the limit per request"
    )
    return PayloadTooLarge(
        f"{count if count is not None else 'the'} {key} exceed the limit{limit} per request",
        reason="too_many_rows",
    )


def parse_json_body(body: bytes, key: str, budget: Budget | None = None) -> Any:
    """A JSON body of any shape, parsed after the budget check; duplicate keys refused (422).

    For the columnar envelope `{"columns": {name: [...]}}` (`key` "columns")."""
    if budget is not None:
        _check_budget(body, False, key, budget)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        return payload
    columns = payload.get(key)
    objects = [payload, columns] if isinstance(columns, dict) else [payload]
    members = sum(len(o) for o in objects)
    colons = count_byte(body, b":")
    if colons == members:
        return payload
    in_strings = sum(name.count(":") for o in objects for name in o) + sum(
        value.count(":")
        for values in (columns.values() if isinstance(columns, dict) else ())
        if isinstance(values, list)
        for value in values
        if type(value) is str
    )
    if colons == members + in_strings:
        return payload
    if budget is not None and colons > budget.members:
        message = f"Duplicate keys in objects: {colons - members - in_strings} members dropped"
        raise ValidationFailed([FieldError(("body", key), message, "duplicate_key")])
    errors = _duplicate_key_errors(body, False, key)
    if errors:  # objects close inner first: the columns object is 0, the envelope 1
        raise ValidationFailed(
            [
                FieldError(("body", key, e.loc[3]), e.msg, e.type) if len(e.loc) == 4 else e
                for e in errors[:100]
            ],
            total_errors=len(errors),
        )
    return payload


def _parse_ndjson(body: bytes) -> list[Any]:
    items = []
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"line {number} is not valid JSON: {exc}") from exc
    return items


def _reject_duplicate_keys(
    body: bytes, items: list[Any], ndjson: bool, key: str, budget: Budget | None = None
) -> None:
    """Each object member has one ':' outside strings, so when the body's ':' count equals the
    members parsed (plus the ':' inside parsed strings) no member was dropped: the usual case costs
    one bytes.count. Otherwise the exact check re-parses with the standard library, unless the body
    has more members than the budget allows (that re-parse would cost seconds): then the duplicates
    are reported without their places."""
    colons = count_byte(body, b":")
    members = (0 if ndjson else 1) + sum(len(item) for item in items if type(item) is dict)
    if colons == members:
        return
    in_strings = sum(
        name.count(":") + (value.count(":") if type(value) is str else 0)
        for item in items
        if type(item) is dict
        for name, value in item.items()
    )
    if colons == members + in_strings:
        return
    if budget is not None and colons > budget.members:
        message = f"Duplicate keys in objects: {colons - members - in_strings} members dropped"
        raise ValidationFailed([FieldError(("body", key), message, "duplicate_key")])
    errors = _duplicate_key_errors(body, ndjson, key)
    if errors:
        raise ValidationFailed(errors[:100], total_errors=len(errors))


def _duplicate_key_errors(body: bytes, ndjson: bool, key: str) -> list[FieldError]:
    """Where duplicate keys are: objects are reported in the order the parser closes them."""
    found: list[FieldError] = []
    closed = 0

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal closed
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                where = name if len(name) <= 64 else name[:64] + "..."
                found.append(
                    FieldError(("body", key, closed, where), "Duplicate key in object", "duplicate_key")
                )
            seen.add(name)
        closed += 1
        return dict(pairs)

    lines = [line for line in body.splitlines() if line.strip()] if ndjson else [body]
    for line in lines:
        try:
            json.loads(line, object_pairs_hook=check)
        except RecursionError as exc:
            raise ValidationFailed([FieldError(("body",), "JSON nested too deeply", "too_deep")]) from exc
    if not ndjson and found and found[-1].loc[2] == closed - 1:  # the envelope itself
        found[-1] = FieldError(("body", found[-1].loc[3]), "Duplicate key in object", "duplicate_key")
    return found


def _parse_envelope(body: bytes, key: str) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise ValidationFailed(
            [FieldError(("body", key), f"Body should be an object with a list `{key}`", "missing", None)]
        )
    extra = sorted(set(payload) - {key})
    if extra:
        raise ValidationFailed(
            [FieldError(("body", name), "Unknown field", "extra_forbidden", None) for name in extra]
        )
    parsed: list[Any] = payload[key]
    return parsed
