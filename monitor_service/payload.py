"""Request bodies: a JSON envelope `{"rows": [...]}` / `{"labels": [...]}`, or NDJSON, into items.

Used by the API and by log replay, which re-reads the bodies exactly as they were received.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from monitor_service.errors import BadRequest, FieldError, UnsupportedMediaType, ValidationFailed

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


def parse_items(body: bytes, ndjson: bool, key: str) -> list[Any]:
    """The list of items of a JSON `{key: [...]}` envelope, or one item per NDJSON line.

    Duplicate keys in an object are refused (422): JSON parsers keep the last value silently.
    """
    items = _parse_ndjson(body) if ndjson else _parse_envelope(body, key)
    _reject_duplicate_keys(body, items, ndjson, key)
    return items


def _parse_ndjson(body: bytes) -> list[Any]:
    items = []
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"line {number} is not valid JSON: {exc}") from exc
    return items


def _reject_duplicate_keys(body: bytes, items: list[Any], ndjson: bool, key: str) -> None:
    """Each object member has one ':' outside strings, so when the body's ':' count equals the
    members parsed (plus the ':' inside parsed strings) no member was dropped: the usual case costs
    one bytes.count. Otherwise the exact check re-parses with the standard library."""
    colons = body.count(b":")
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
