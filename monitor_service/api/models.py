"""Model listing, latest results and on-demand calculation."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from monitor_service.api.deps import UNAUTHORIZED, MonitorDep, read_body, require_admin_token
from monitor_service.errors import FieldError, ValidationFailed
from monitor_service.monitor import Monitor
from monitor_service.reference import parse_reference
from monitor_service.results import ReportPage
from monitor_service.runtime import ModelRuntime

router = APIRouter(prefix="/v1/models", tags=["models"])


def _summary(monitor: Monitor, runtime: ModelRuntime) -> dict[str, Any]:
    config = runtime.config
    return {
        "name": config.name,
        "task": config.task,
        "window_rows": runtime.window.evict_expired(time.time()),
        "window_max_rows": config.window.max_rows,
        "reference_rows": len(runtime.reference),
        "schedule_every_seconds": config.schedule.every,
        "min_rows": config.schedule.min_rows,
        **monitor.store.get(config.name).as_dict(),
        "links": {
            "rows": f"/v1/models/{config.name}/rows",
            "results": f"/v1/models/{config.name}/results",
            "calculate": f"/v1/models/{config.name}/calculate",
            "report": f"/v1/models/{config.name}/report",
        },
    }


@router.get("", summary="List monitored models")
async def list_models(monitor: MonitorDep) -> dict[str, Any]:
    """Every configured model with its window size, last calculation time and status."""
    return {"models": [_summary(monitor, r) for r in monitor.runtimes.values()]}


@router.get("/{model}/results", summary="Latest results", responses={404: {"description": "unknown model"}})
async def get_results(model: str, monitor: MonitorDep) -> dict[str, Any]:
    """The last successful calculation (null before the first) and the status of the last attempt."""
    runtime = monitor.runtime(model)
    status = monitor.store.get(model)
    return {
        **_summary(monitor, runtime),
        "result": status.latest.as_dict() if status.latest else None,
    }


@router.post(
    "/{model}/calculate",
    summary="Calculate now",
    dependencies=[Depends(require_admin_token)],
    responses={
        **UNAUTHORIZED,
        404: {"description": "unknown model"},
        409: {"description": "the window is empty"},
        500: {"description": "the calculation failed (logged and counted)"},
    },
)
async def calculate_now(model: str, monitor: MonitorDep) -> dict[str, Any]:
    """Run one calculation on the current window, publish it and return it."""
    result = await monitor.calculate(model)
    return result.as_dict()


def report_headers(page: ReportPage) -> dict[str, str]:
    """A report page runs only its own scripts, in an opaque origin, and is never sniffed or framed."""
    return {
        "Content-Security-Policy": page.content_security_policy + "; sandbox allow-scripts allow-popups",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


@router.get(
    "/{model}/report",
    summary="Interactive HTML report",
    response_class=HTMLResponse,
    dependencies=[Depends(require_admin_token)],  # expensive: it occupies the calculation worker
    responses={
        **UNAUTHORIZED,
        404: {"description": "unknown model"},
        409: {"description": "the window is empty, or Evidently cannot render a report of it"},
    },
)
async def html_report(model: str, monitor: MonitorDep) -> HTMLResponse:
    """Evidently's HTML report (drift table and per-column distributions) of the window against the
    reference, built on request with the same stat tests and thresholds as the scheduled calculation."""
    page = await monitor.report_html(model)
    return HTMLResponse(page.html, headers=report_headers(page))


@router.get(
    "/{model}/window",
    summary="Export the window",
    dependencies=[Depends(require_admin_token)],
    responses={**UNAUTHORIZED, 404: {"description": "unknown model"}, 422: {"description": "unknown column"}},
)
async def export_window(
    model: str,
    monitor: MonitorDep,
    columns: Annotated[str | None, Query(description="comma-separated columns (default: all)")] = None,
) -> dict[str, Any]:
    """The rows now in the window, column by column in arrival order (nulls as null)."""
    runtime = monitor.runtime(model)
    snapshot = runtime.window.snapshot(time.time())
    wanted = columns.split(",") if columns else list(snapshot.columns)
    unknown = [c for c in wanted if c not in snapshot.columns]
    if unknown:
        raise ValidationFailed(
            [FieldError(("query", "columns"), f"Unknown column {c!r}", "value_error", c) for c in unknown]
        )
    return {
        "model": model,
        "rows": snapshot.rows,
        "columns": {name: _json_values(snapshot.columns[name]) for name in wanted},
    }


def _json_values(array: np.ndarray) -> list[Any]:
    if array.dtype.kind == "f":
        return [None if v != v else v for v in array.tolist()]
    return array.tolist()


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
        413: {"description": "body too large"},
        415: {"description": "unsupported content type"},
        422: {"description": "columns missing or of the wrong type"},
    },
)
async def put_reference(model: str, request: Request, monitor: MonitorDep) -> dict[str, Any]:
    """Validate a new reference against the model's columns and swap it in atomically (the next
    calculation uses it); with storage on, it is persisted and survives restarts."""
    runtime = monitor.runtime(model)
    body = await read_body(request, monitor.config.server.max_reference_bytes)
    # Reading up to max_reference_bytes of CSV or Parquet is too slow for the event loop.
    frame = await asyncio.to_thread(
        parse_reference, body, request.headers.get("content-type", ""), runtime.schema
    )
    persisted = await monitor.replace_reference(model, frame)
    return {"model": model, "rows": len(frame), "columns": list(frame.columns), "persisted": persisted}
