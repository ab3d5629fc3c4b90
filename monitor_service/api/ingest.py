"""POST /v1/models/{model}/rows: JSON `{"rows": [...]}` or NDJSON, validated, appended atomically."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from monitor_service.api.deps import UNAUTHORIZED, MetricsDep, MonitorDep, read_body, require_ingest_token
from monitor_service.bodies import NDJSON, Limits, body_format, check_count, decode_rows, inflate
from monitor_service.config import ServerConfig
from monitor_service.errors import (
    BadRequest,
    PayloadTooLarge,
    RateLimited,
    StorageUnavailable,
    UnknownModel,
    ValidationFailed,
)
from monitor_service.payload import parse_items
from monitor_service.runtime import ModelRuntime, RequestBody

router = APIRouter(prefix="/v1/models", tags=["ingest"])


class IngestAccepted(BaseModel):
    model: str
    accepted: int
    window_rows: int


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Rows as JSON objects, NDJSON lines, JSON columns or an Arrow IPC stream; any of "
        "them may be sent with `Content-Encoding: gzip` (the inflated size counts against max_body_bytes).",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
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
                        {
                            "type": "object",
                            "required": ["columns"],
                            "additionalProperties": False,
                            "properties": {
                                "columns": {
                                    "type": "object",
                                    "description": "column name -> one value per row (all the same length)",
                                    "additionalProperties": {"type": "array"},
                                }
                            },
                        },
                    ]
                },
                "example": {"rows": [{"carat": 0.3, "cut": "Ideal", "prediction": 512.0}]},
            },
            "application/x-ndjson": {"schema": {"type": "string", "description": "one JSON row per line"}},
            "application/vnd.apache.arrow.stream": {
                "schema": {"type": "string", "format": "binary", "description": "an Arrow IPC stream"}
            },
        },
    }
}


_ERRORS: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    400: {"description": "malformed JSON or NDJSON"},
    404: {"description": "unknown model"},
    413: {"description": "body or batch too large"},
    415: {"description": "unsupported content type or content encoding"},
    503: {"description": "the durable log cannot be written; nothing was stored"},
}
_REASONS: dict[type[Exception], str] = {
    BadRequest: "bad_request",
    ValidationFailed: "validation",
    StorageUnavailable: "storage_unavailable",
}


# A rejected body costs the model's rate limit the rows it could have carried: one per this many
# bytes per column (a 20-column row of full-precision floats is about 500 bytes of JSON).
_BYTES_PER_FIELD = 32


def _fields(runtime: ModelRuntime, key: str) -> int:
    return len(runtime.schema.columns) if key == "rows" else 2


def _check_debt(runtime: ModelRuntime) -> None:
    """429 before reading the body while rejected bodies have put the model's rate limit in debt."""
    if runtime.limiter is not None and (wait := runtime.limiter.debt_wait()):
        raise RateLimited(
            f"model {runtime.name!r} takes at most {runtime.limiter.rate:g} rows/s, "
            "counting rejected bodies by their size",
            wait,
        )


def _charge_rejected(runtime: ModelRuntime, key: str, size: int) -> None:
    if runtime.limiter is not None and size:
        runtime.limiter.charge(math.ceil(size / (_BYTES_PER_FIELD * _fields(runtime, key))))


def _limits(server: ServerConfig, runtime: ModelRuntime, key: str) -> Limits:
    return Limits(server.max_rows_per_request, server.max_body_bytes, _fields(runtime, key))


async def _read(request: Request, server: ServerConfig, received: list[int], *, arrow: bool) -> RequestBody:
    """The body as received and its format (415 before reading an unsupported one); `received`
    gets its size as soon as it is read (a rejected body is charged to the rate limit by it)."""
    headers = request.headers
    fmt = body_format(headers.get("content-type", ""), headers.get("content-encoding", ""), arrow=arrow)
    body = await read_body(request, server.max_body_bytes)
    received.append(len(body))
    return RequestBody(body, fmt)


@router.post(
    "/{model}/rows",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
    dependencies=[Depends(require_ingest_token)],
    openapi_extra=_BODY_DOC,
    responses={
        **_ERRORS,
        422: {"description": "invalid rows"},
        429: {"description": "the model's rate limit is exhausted (Retry-After)"},
    },
    summary="Send inference rows",
)
async def ingest_rows(model: str, request: Request, monitor: MonitorDep, metrics: MetricsDep) -> Response:
    """Append a batch to the model's window. All rows land or none: any problem rejects the batch."""
    started = time.perf_counter()
    if model not in monitor.runtimes:
        metrics.requests_rejected.labels("", "unknown_model").inc()
        raise UnknownModel(model)
    runtime = monitor.runtimes[model]
    server = monitor.config.server
    received: list[int] = []
    decoded = 0
    try:
        _check_debt(runtime)
        source = await _read(request, server, received, arrow=True)
        now = time.time()
        batch = decode_rows(
            source.body, source.body_format, runtime.schema, now, _limits(server, runtime, "rows")
        )
        decoded = batch.rows
        window_rows = monitor.ingest_batch(model, batch, now, source)
    except (BadRequest, PayloadTooLarge, ValidationFailed, StorageUnavailable, RateLimited) as exc:
        if isinstance(exc, BadRequest | PayloadTooLarge | ValidationFailed):
            _charge_rejected(runtime, "rows", sum(received))
        reason = _REASONS.get(type(exc)) or getattr(exc, "reason", "bad_request")
        metrics.requests_rejected.labels(model, reason).inc()
        metrics.rows_rejected.labels(model, reason).inc(decoded or getattr(exc, "rows", 0))
        raise
    metrics.rows_ingested.labels(model).inc(batch.rows)
    metrics.ingest_duration.labels(model).observe(time.perf_counter() - started)
    # Serialised here: FastAPI would validate the response model and encode it again (~0.1 ms).
    answer = orjson.dumps({"model": model, "accepted": batch.rows, "window_rows": window_rows})
    return Response(answer, status_code=202, media_type="application/json")


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
        **_ERRORS,
        409: {"description": "the model has no id/target"},
        422: {"description": "invalid labels"},
    },
    summary="Send ground-truth labels",
)
async def ingest_labels(model: str, request: Request, monitor: MonitorDep) -> LabelsAccepted:
    """Join labels to rows by id. Labels whose rows are not in the window wait for them a while."""
    runtime = monitor.runtime(model)
    server = monitor.config.server
    received: list[int] = []
    try:
        _check_debt(runtime)
        source = await _read(request, server, received, arrow=False)
        limits = _limits(server, runtime, "labels")
        body = inflate(source.body, source.body_format, limits.max_bytes)
        labels = parse_items(body, source.body_format == NDJSON, "labels", limits.budget)
        check_count(len(labels), "labels", limits)
        outcome = monitor.add_labels(model, labels, source)
    except (BadRequest, PayloadTooLarge, ValidationFailed):
        _charge_rejected(runtime, "labels", sum(received))
        raise
    return LabelsAccepted(
        model=model, accepted=outcome.accepted, matched=outcome.matched, pending=outcome.pending
    )
