"""POST /v1/models/{model}/rows: JSON `{"rows": [...]}` or NDJSON, validated, appended atomically."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field

from monitor_service.api.deps import MetricsDep, MonitorDep, read_body, require_ingest_token
from monitor_service.errors import BadRequest, FieldError, PayloadTooLarge, UnknownModel, ValidationFailed

router = APIRouter(prefix="/v1/models", tags=["ingest"])

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")


class IngestAccepted(BaseModel):
    model: str
    accepted: int
    window_rows: int


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["rows"],
                    "additionalProperties": False,
                    "properties": {
                        "rows": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "object", "additionalProperties": True},
                        }
                    },
                },
                "example": {"rows": [{"carat": 0.3, "cut": "Ideal", "prediction": 512.0}]},
            },
            "application/x-ndjson": {"schema": {"type": "string", "description": "one JSON row per line"}},
        },
    }
}


def _parse(body: bytes, content_type: str, key: str = "rows") -> list[Any]:
    """The list of items of a JSON `{key: [...]}` envelope, or one item per NDJSON line."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        rows = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise BadRequest(f"line {number} is not valid JSON: {exc}") from exc
        return rows
    if media not in JSON_TYPES:
        raise BadRequest(
            f"unsupported content type {media or '(none)'!r}: send application/json or application/x-ndjson",
            status=415,
        )
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
            [FieldError(("body", key), "Unknown field", "extra_forbidden", None) for key in extra]
        )
    items: list[Any] = payload[key]
    return items


@router.post(
    "/{model}/rows",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
    dependencies=[Depends(require_ingest_token)],
    openapi_extra=_BODY_DOC,
    responses={
        404: {"description": "unknown model"},
        413: {"description": "body or batch too large"},
        415: {"description": "unsupported content type"},
        422: {"description": "invalid rows"},
    },
    summary="Send inference rows",
)
async def ingest_rows(
    model: str, request: Request, monitor: MonitorDep, metrics: MetricsDep
) -> IngestAccepted:
    """Append a batch to the model's window. All rows land or none: any problem rejects the batch."""
    started = time.perf_counter()
    if model not in monitor.runtimes:
        metrics.requests_rejected.labels("", "unknown_model").inc()
        raise UnknownModel(model)
    server = monitor.config.server
    rows: list[Any] = []
    try:
        body = await read_body(request, server.max_body_bytes)
        rows = _parse(body, request.headers.get("content-type", ""))
        if not rows:
            raise ValidationFailed([FieldError(("body", "rows"), "Send at least one row", "too_short", [])])
        if len(rows) > server.max_rows_per_request:
            raise PayloadTooLarge(
                f"{len(rows)} rows exceed the limit of {server.max_rows_per_request} per request",
                reason="too_many_rows",
            )
        window_rows = monitor.ingest(model, rows)
    except (BadRequest, PayloadTooLarge, ValidationFailed) as exc:
        reason = {BadRequest: "bad_request", ValidationFailed: "validation"}.get(type(exc))
        reason = reason or getattr(exc, "reason", "bad_request")
        metrics.requests_rejected.labels(model, reason).inc()
        metrics.rows_rejected.labels(model, reason).inc(len(rows))
        raise
    metrics.rows_ingested.labels(model).inc(len(rows))
    metrics.ingest_duration.labels(model).observe(time.perf_counter() - started)
    return IngestAccepted(model=model, accepted=len(rows), window_rows=window_rows)


class LabelsAccepted(BaseModel):
    model: str
    accepted: int
    matched: int = Field(description="labels joined to a row now in the window")
    pending: int = Field(description="labels kept until their row arrives (bounded by labels.pending_ttl)")


_LABELS_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["labels"],
                    "additionalProperties": False,
                    "properties": {
                        "labels": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["id", "target"],
                                "additionalProperties": False,
                                "properties": {
                                    "id": {"type": ["string", "integer"]},
                                    "target": {"type": ["number", "string", "integer", "boolean"]},
                                },
                            },
                        }
                    },
                },
                "example": {"labels": [{"id": "r-1", "target": 512.0}]},
            },
            "application/x-ndjson": {"schema": {"type": "string", "description": "one label per line"}},
        },
    }
}


@router.post(
    "/{model}/labels",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LabelsAccepted,
    dependencies=[Depends(require_ingest_token)],
    openapi_extra=_LABELS_DOC,
    responses={
        404: {"description": "unknown model"},
        409: {"description": "the model has no id/target"},
        413: {"description": "body or batch too large"},
        422: {"description": "invalid labels"},
    },
    summary="Send ground-truth labels",
)
async def ingest_labels(model: str, request: Request, monitor: MonitorDep) -> LabelsAccepted:
    """Join labels to rows by id. Labels whose rows are not in the window wait for them a while."""
    monitor.runtime(model)
    server = monitor.config.server
    body = await read_body(request, server.max_body_bytes)
    labels = _parse(body, request.headers.get("content-type", ""), key="labels")
    if not labels:
        raise ValidationFailed([FieldError(("body", "labels"), "Send at least one label", "too_short", [])])
    if len(labels) > server.max_rows_per_request:
        raise PayloadTooLarge(
            f"{len(labels)} labels exceed the limit of {server.max_rows_per_request} per request",
            reason="too_many_rows",
        )
    outcome = monitor.add_labels(model, labels)
    return LabelsAccepted(
        model=model, accepted=outcome.accepted, matched=outcome.matched, pending=outcome.pending
    )
