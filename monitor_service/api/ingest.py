"""POST /v1/models/{model}/rows: JSON `{"rows": [...]}` or NDJSON, validated, appended atomically.

An `Idempotency-Key` header names the batch (MonitorClient sends one per batch, the same on every
retry of it). In cluster mode it becomes the stream's message id, so a retried batch is stored once;
one node keeps no batch ids (a retry whose first answer was lost is appended again).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, status
from pydantic import BaseModel, Field

from monitor_service.api.deps import UNAUTHORIZED, MetricsDep, ServiceDep, read_body, require_ingest_token
from monitor_service.config import ServerConfig
from monitor_service.errors import (
    BadRequest,
    FieldError,
    MonitorError,
    PayloadTooLarge,
    UnknownModel,
    ValidationFailed,
)
from monitor_service.journal import RecordKind
from monitor_service.model_state import ModelState, RequestBody
from monitor_service.payload import Budget, is_ndjson, parse_items

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


_ERRORS: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    400: {"description": "malformed JSON or NDJSON"},
    404: {"description": "unknown model"},
    413: {"description": "body or batch too large"},
    415: {"description": "unsupported content type"},
    503: {"description": "the durable log (in cluster mode: the cluster) cannot take it; nothing was stored"},
}


async def _read_items(
    request: Request, server: ServerConfig, state: ModelState, key: RecordKind, received: list[int]
) -> tuple[list[Any], RequestBody]:
    """The items of a request body within the configured limits, and the body itself for the log.

    `received` gets the body's size as soon as it is read (for charging a rejected body)."""
    ndjson = is_ndjson(request.headers.get("content-type", ""))
    body = await read_body(request, server.max_body_bytes)
    received.append(len(body))
    items = parse_items(body, ndjson, key, Budget(server.max_rows_per_request, state.fields_per_item(key)))
    if not items:
        raise ValidationFailed(
            [FieldError(("body", key), f"Send at least one item in `{key}`", "too_short", [])]
        )
    if len(items) > server.max_rows_per_request:
        raise PayloadTooLarge(
            f"{len(items)} {key} exceed the limit of {server.max_rows_per_request} per request",
            reason="too_many_rows",
            row_count=len(items),
        )
    return items, RequestBody(body, ndjson)


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
) -> IngestAccepted:
    """Append a batch to the model's window. All rows land or none: any problem rejects the batch."""
    started = time.perf_counter()
    if model not in service.models:
        metrics.requests_rejected.labels("", "unknown_model").inc()
        raise UnknownModel(model)
    rows: list[Any] = []
    state = service.models[model]
    received: list[int] = []
    try:
        state.check_rate_debt()
        rows, source = await _read_items(request, service.config.server, state, "rows", received)
        window_rows = await state.ingest(rows, source, idempotency_key)
    except MonitorError as exc:
        if isinstance(exc, BadRequest | PayloadTooLarge | ValidationFailed):
            # Rows of a batch that failed validation were already taken from the limit.
            state.charge_rejected("rows", sum(received), len(rows))
        metrics.requests_rejected.labels(model, exc.reason).inc()
        metrics.rows_rejected.labels(model, exc.reason).inc(len(rows) or exc.rows)
        raise
    metrics.rows_ingested.labels(model).inc(len(rows))
    metrics.ingest_duration.labels(model).observe(time.perf_counter() - started)
    return IngestAccepted(model=model, accepted=len(rows), window_rows=window_rows)


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
    received: list[int] = []
    try:
        state.check_rate_debt()
        labels, source = await _read_items(request, service.config.server, state, "labels", received)
        outcome = await state.add_labels(labels, source, idempotency_key)
    except (BadRequest, PayloadTooLarge, ValidationFailed):
        state.charge_rejected("labels", sum(received), 0)
        raise
    return LabelsAccepted(
        model=model, accepted=outcome.accepted, matched=outcome.matched, pending=outcome.pending
    )
