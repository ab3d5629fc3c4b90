"""PUT /v1/models/{model}/reference: replace a model's reference (admin)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request

from monitor_service.api.deps import UNAUTHORIZED, ServiceDep, read_body, require_admin_token
from monitor_service.reference import parse_reference

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.put(
    "/{model}/reference",
    summary="Replace the reference",
    dependencies=[Depends(require_admin_token)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["rows"],
                        "properties": {"rows": {"type": "array"}},
                    }
                },
            },
        }
    },
    responses={
        **UNAUTHORIZED,
        400: {"description": "unreadable body"},
        404: {"description": "unknown model"},
        413: {"description": "body too large, or more rows than server.max_reference_rows"},
        415: {"description": "unsupported content type"},
        422: {"description": "columns missing or of the wrong type"},
    },
)
async def put_reference(model: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    """Validate a new reference against the model's columns and swap it in atomically (the next
    calculation uses it); with storage on, it is persisted and survives restarts."""
    state = service.model(model)
    body = await read_body(request, service.config.server.max_reference_bytes)
    # Reading up to max_reference_bytes of CSV or Parquet is too slow for the event loop.
    frame = await asyncio.to_thread(
        parse_reference,
        body,
        request.headers.get("content-type", ""),
        state.schema,
        service.config.server.max_reference_rows,
    )
    persisted = await state.replace_reference(frame)
    return {"model": model, "rows": len(frame), "columns": list(frame.columns), "persisted": persisted}
