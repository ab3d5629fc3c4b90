"""Ingest request bodies in every accepted format, decoded into validated rows or labels.

A body is identified by a format byte (stored with it in the durable log, so replay decodes it
exactly as the request did): the media type in the low bits and gzip in bit 4.

  JSON     application/json     `{"rows": [{column: value}, ...]}` or `{"columns": {column: [value, ...]}}`
  NDJSON   application/x-ndjson one row object per line
  ARROW    application/vnd.apache.arrow.stream  an Arrow IPC stream, one column per configured column

`Content-Encoding: gzip` is accepted for each; the inflated size is bounded like a plain body
(413 beyond it, so a gzip bomb costs at most `max_body_bytes`). Every format is checked with the
same rules and answers with the same 4xx: rows bodies first go through the one-pass decoder
(rowcodec.py) and, when it cannot answer, the general path (payload.py + schema.py) that reports
every problem.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from monitor_service.contracts import ContractCounts
from monitor_service.errors import (
    BadRequest,
    FieldError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from monitor_service.payload import Budget, parse_items, parse_json_body
from monitor_service.schema import Batch, CategoryInterner, RowSchema, validate_columns, validate_rows

JSON = 0
NDJSON = 1
ARROW = 2
GZIP = 0x10
_MEDIA = 0x0F

_MEDIA_TYPES = {
    "application/json": JSON,
    "application/x-ndjson": NDJSON,
    "application/jsonl": NDJSON,
    "application/ndjson": NDJSON,
    "application/vnd.apache.arrow.stream": ARROW,
}
_ENCODINGS = {"": 0, "identity": 0, "gzip": GZIP, "x-gzip": GZIP}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Limits:
    """What one request may hold: items, bytes (inflated too), and the model's fields per item."""

    max_items: int
    max_bytes: int
    fields: int

    @property
    def budget(self) -> Budget:
        return Budget(self.max_items, self.fields)


def body_format(content_type: str, content_encoding: str, *, arrow: bool = True) -> int:
    """The format byte of a request from its headers; 415 naming what is supported otherwise."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind = _MEDIA_TYPES.get(media)
    if kind is None or (kind == ARROW and not arrow):
        supported = [m for m, k in _MEDIA_TYPES.items() if arrow or k != ARROW]
        raise UnsupportedMediaType(
            f"unsupported content type {media or '(none)'!r}: send one of {', '.join(supported)}"
        )
    encoding = content_encoding.strip().lower()
    if encoding not in _ENCODINGS:
        raise UnsupportedMediaType(
            f"unsupported content encoding {encoding!r}: send gzip, or identity (no Content-Encoding)"
        )
    return kind | _ENCODINGS[encoding]


def inflate(body: bytes, fmt: int, max_bytes: int | None) -> bytes:
    """The body as sent before compression. A compressed body without `Content-Encoding: gzip`
    gets 415 saying so (its bytes would otherwise be reported as malformed JSON)."""
    if not fmt & GZIP:
        if body.startswith(_GZIP_MAGIC) and fmt & _MEDIA != ARROW:
            raise UnsupportedMediaType(
                "the body is gzip-compressed but the request has no `Content-Encoding: gzip`"
            )
        return body
    inflater = zlib.decompressobj(wbits=31)
    limit = max_bytes or 0
    try:
        out = inflater.decompress(body, limit + 1 if limit else 0)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid gzip: {exc}") from None
    if limit and (len(out) > limit or inflater.unconsumed_tail):
        raise PayloadTooLarge(f"the body inflates to more than the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return out


def decode_rows(
    body: bytes,
    fmt: int,
    schema: RowSchema,
    now: float,
    limits: Limits | None = None,
    interner: CategoryInterner | None = None,
    counts: ContractCounts | None = None,
) -> Batch:
    """A request (or logged) body of rows as a validated Batch; raises the 4xx errors of the API.

    `interner` shares category strings with the model's window; `counts` counts what the contracts
    met (live bodies only: replayed ones were counted when they arrived)."""
    body = inflate(body, fmt, limits.max_bytes if limits else None)
    media = fmt & _MEDIA
    if media == ARROW:
        from monitor_service.arrow_rows import arrow_batch

        batch = arrow_batch(body, schema, now, interner, counts)
        check_count(batch.rows, "rows", limits)
        return batch
    ndjson = media == NDJSON
    codec = schema.codec
    columnar = not ndjson and _looks_columnar(body)
    if ndjson:
        fast = codec.ndjson(body, now, interner, counts)
    elif columnar:
        fast = codec.columns(body, now, interner, counts)
    else:
        fast = codec.rows(body, now, interner, counts)
    if fast is not None and (limits is None or fast.rows <= limits.max_items):
        return fast
    # The general path: finds and reports every problem.
    budget = limits.budget if limits else None
    if columnar:
        payload = parse_json_body(body, "columns", budget)
        if isinstance(payload, dict) and "columns" in payload:
            extra = sorted(set(payload) - {"columns"})
            if extra:
                raise ValidationFailed(
                    [FieldError(("body", name), "Unknown field", "extra_forbidden", None) for name in extra]
                )
            columns = payload["columns"]
            if isinstance(columns, dict) and columns:
                lengths = {len(v) for v in columns.values() if isinstance(v, list)}
                check_count(max(lengths, default=0), "rows", limits)
            batch = validate_columns(columns, schema, now, interner, counts)
            if batch.rows == 0:
                raise ValidationFailed([_empty("columns")])
            return batch
    items = parse_items(body, ndjson, "rows", budget)
    check_count(len(items), "rows", limits)
    return validate_rows(items, schema, now, interner, counts)


def labels_of(body: bytes, fmt: int, limits: Limits | None = None) -> list[Any]:
    """The label items of a request (or logged) body: `{"labels": [...]}` or NDJSON, gzip or not."""
    body = inflate(body, fmt, limits.max_bytes if limits else None)
    if fmt & _MEDIA == ARROW:
        raise UnsupportedMediaType("labels are sent as JSON or NDJSON")
    items = parse_items(body, fmt & _MEDIA == NDJSON, "labels", limits.budget if limits else None)
    check_count(len(items), "labels", limits)
    return items


def _looks_columnar(body: bytes) -> bool:
    """True when the body's first key is "columns" (which decoder to try first; the general path
    then decides by what the parsed body holds)."""
    head = body[:64].lstrip()
    return head.startswith(b"{") and head[1:].lstrip().startswith(b'"columns"')


def _empty(key: str) -> FieldError:
    return FieldError(("body", key), f"Send at least one item in `{key}`", "too_short", [])


def check_count(count: int, key: str, limits: Limits | None) -> None:
    """422 for an empty body, 413 for more items than a request may hold."""
    if count == 0:
        raise ValidationFailed([_empty(key)])
    if limits is not None and count > limits.max_items:
        raise PayloadTooLarge(
            f"{count} {key} exceed the limit of {limits.max_items} per request",
            reason="too_many_rows",
            row_count=count,
        )


def describe(fmt: int) -> dict[str, Any]:
    """The format byte in words (for logs and errors)."""
    media = next((m for m, k in _MEDIA_TYPES.items() if k == fmt & _MEDIA), "unknown")
    return {"media_type": media, "gzip": bool(fmt & GZIP)}
