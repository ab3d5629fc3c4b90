"""POST /v1/models/{model}/rows and /labels: bodies in any accepted format, validated, stored
durably, then appended atomically. HTTP only: decoding and validation belong to the model's state.

An `Idempotency-Key` header names the batch (MonitorClient sends one per batch, the same on every
retry of it). In cluster mode it becomes the stream's message id, so a retried batch is stored once;
one node keeps no batch ids (a retry whose first answer was lost is appended again).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel, Field

from monitor_service.api.deps import UNAUTHORIZED, MetricsDep, ServiceDep, read_body, require_ingest_token
from monitor_service.bodies import Limits, body_format
from monitor_service.config import ServerConfig
from monitor_service.errors import BadRequest, MonitorError, PayloadTooLarge, UnknownModel, ValidationFailed
from monitor_service.journal import RecordKind
from monitor_service.model_state import ModelState, RequestBody

router = APIRouter(prefix="/v1/models", tags=["ingest"])


class IngestAccepted(BaseModel):
    model: str
    accepted: int
    window_rows: int | None = Field(
        description="rows in the window after this batch; null in cluster mode (the window is "
        "filled from the cluster's stream, not by the request)"
    )


_IDEMPOTENCY_DOC = (
    "names the batch, the same on every retry of it (1 to 200 printable ASCII characters, no spaces): "
    "in cluster mode a retried batch is stored once"
)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description=_IDEMPOTENCY_DOC)]


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
    503: {"description": "the durable log (in cluster mode: the cluster) cannot take it; nothing was stored"},
}
_REFUSED_BODY = (BadRequest, PayloadTooLarge, ValidationFailed)  # charged to the rate limit by size


def _limits(server: ServerConfig, state: ModelState, kind: RecordKind) -> Limits:
    return Limits(server.max_rows_per_request, server.max_body_bytes, state.fields_per_item(kind))


async def _read(request: Request, server: ServerConfig, received: list[int], *, arrow: bool) -> RequestBody:
    """The body as received and its format; `received` gets its size as soon as it is read (a
    rejected body is charged to the rate limit by it)."""
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
async def ingest_rows(
    model: str,
    request: Request,
    service: ServiceDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Append a batch to the model's window. All rows land or none: any problem rejects the batch."""
    started = time.perf_counter()
    if model not in service.models:
        metrics.requests_rejected.labels("", "unknown_model").inc()
        raise UnknownModel(model)
    state = service.models[model]
    server = service.config.server
    received: list[int] = []
    try:
        state.check_rate_debt()
        source = await _read(request, server, received, arrow=True)
        accepted, window_rows = await state.ingest_body(
            source, _limits(server, state, "rows"), idempotency_key
        )
    except MonitorError as exc:
        if isinstance(exc, _REFUSED_BODY):
            state.charge_rejected("rows", sum(received), exc.rows)
        metrics.requests_rejected.labels(model, exc.reason).inc()
        metrics.rows_rejected.labels(model, exc.reason).inc(exc.rows)
        raise
    metrics.rows_ingested.labels(model).inc(accepted)
    metrics.ingest_duration.labels(model).observe(time.perf_counter() - started)
    # Serialised here: FastAPI would validate the response model and encode it again (~0.1 ms).
    answer = orjson.dumps({"model": model, "accepted": accepted, "window_rows": window_rows})
    return Response(answer, status_code=202, media_type="application/json")


class LabelsAccepted(BaseModel):
    model: str
    accepted: int
    matched: int | None = Field(
        description="labels joined to a row now in the window; null in cluster mode (joined later)"
    )
    pending: int | None = Field(
        description="labels kept until their row arrives (bounded by labels.pending_ttl); null in "
        "cluster mode"
    )
    duplicates: int = Field(
        default=0, description="labels dropped because their id came again later in the same body"
    )


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
        429: {"description": "the model's rate limit is exhausted (Retry-After)"},
    },
    summary="Send ground-truth labels",
)
async def ingest_labels(
    model: str, request: Request, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> LabelsAccepted:
    """Join labels to rows by id. Labels whose rows are not in the window wait for them a while."""
    state = service.model(model)
    server = service.config.server
    received: list[int] = []
    try:
        state.check_rate_debt()
        source = await _read(request, server, received, arrow=False)
        outcome = await state.add_labels_body(source, _limits(server, state, "labels"), idempotency_key)
    except _REFUSED_BODY:
        state.charge_rejected("labels", sum(received), 0)
        raise
    return LabelsAccepted(
        model=model,
        accepted=outcome.accepted,
        matched=outcome.matched,
        pending=outcome.pending,
        duplicates=outcome.duplicates,
    )
