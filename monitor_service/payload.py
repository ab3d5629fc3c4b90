"""Request bodies: a JSON envelope `{"rows": [...]}` / `{"labels": [...]}`, or NDJSON, into items.

Used by the API and by log replay, which re-reads the bodies exactly as they were received.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor_service.errors import BadRequest, FieldError, ValidationFailed

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")


def is_ndjson(content_type: str) -> bool:
    """True for NDJSON media types; raises 415 for anything that is neither JSON nor NDJSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        return True
    if media in JSON_TYPES:
        return False
    raise BadRequest(
        f"unsupported content type {media or '(none)'!r}: send application/json or application/x-ndjson",
        status=415,
    )


def parse_items(body: bytes, ndjson: bool, key: str) -> list[Any]:
    """The list of items of a JSON `{key: [...]}` envelope, or one item per NDJSON line."""
    if ndjson:
        items = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise BadRequest(f"line {number} is not valid JSON: {exc}") from exc
        return items
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
