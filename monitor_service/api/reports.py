"""Stored reports: the list per model, and one report as an HTML page (or Evidently's JSON).

The router reads `request.app.state.report_stores`, a callable `model name -> ReportStore` that
raises UnknownModel for names not configured (the composition root builds the stores).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from monitor_service.api.deps import UNAUTHORIZED, require_admin_token
from monitor_service.errors import (
    FieldError,
    NotFound,
    ReportUnavailable,
    StorageUnavailable,
    ValidationFailed,
)
from monitor_service.reports import REPORT_ID, ReportEntry, ReportStore
from monitor_service.results import ReportPage

ReportStores = Callable[[str], ReportStore]

router = APIRouter(prefix="/v1/models", tags=["reports"], dependencies=[Depends(require_admin_token)])

PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, max-age=3600",  # a stored report never changes
}


async def get_report_stores(request: Request) -> ReportStores:
    """The service's stores by model name (UnknownModel, 404, for others)."""
    stores: ReportStores = request.app.state.service.report_store
    return stores


ReportStoresDep = Annotated[ReportStores, Depends(get_report_stores)]


@router.get(
    "/{model}/reports",
    summary="List stored reports",
    responses={**UNAUTHORIZED, 404: {"description": "unknown model"}},
)
async def list_reports(
    model: str,
    stores: ReportStoresDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="newest first, at most this many")] = 100,
) -> dict[str, Any]:
    """The reports kept for the model, newest first: id, calculation time and verdict."""
    store = stores(model)
    entries = store.entries()
    oldest = entries[-1].as_dict()["time_iso"] if entries else None
    return {
        "model": model,
        "count": len(entries),
        "bytes": sum(e.size_bytes for e in entries),
        "oldest": oldest,
        "reports": [e.as_dict() for e in entries[:limit]],
    }


@router.get(
    "/{model}/report",
    summary="A stored report",
    response_class=HTMLResponse,
    responses={
        **UNAUTHORIZED,
        404: {"description": "unknown model, no report stored yet, none at that time, or unknown id"},
        409: {"description": "the stored report cannot be rendered"},
        422: {"description": "bad `at` or `id`, or both given"},
        503: {"description": "the report store cannot be read"},
        200: {"content": {"text/html": {}, "application/json": {}}},
    },
)
async def get_report(
    model: str,
    stores: ReportStoresDep,
    at: Annotated[
        str | None,
        Query(description="the report in force at this time: Unix seconds or ISO 8601 (UTC if no zone)"),
    ] = None,
    report_id: Annotated[str | None, Query(alias="id", description="a report id from the list")] = None,
    format: Annotated[Literal["html", "json"], Query(description="json: Evidently's snapshot")] = "html",
) -> Response:
    """Evidently's report of a past calculation, stored when it ran: the latest without
    parameters, the one in force at `at`, or the one with `id`. `format=json` gives Evidently's
    snapshot JSON (loadable with `evidently.core.report.Snapshot.load`)."""
    store = stores(model)
    entry = _find(store, model, _parse_at(at) if at is not None else None, report_id)
    headers = {**PAGE_HEADERS, "X-Report-Id": entry.id, "X-Report-Time": f"{entry.time:.3f}"}
    if format == "json":
        text: str = await _load(store.read, entry)
        disposition = f'attachment; filename="{model}-{entry.id}.json"'
        return Response(
            text, media_type="application/json", headers={**headers, "Content-Disposition": disposition}
        )
    page: ReportPage = await _load(store.page, entry)
    # Only the page's own scripts run, in an opaque origin (no access to the monitor's cookies or
    # storage), never sniffed, framed or given a referrer.
    policy = page.content_security_policy + "; sandbox allow-scripts allow-popups"
    return HTMLResponse(page.html, headers={**headers, "Content-Security-Policy": policy})


async def _load(read: Callable[[ReportEntry], Any], entry: ReportEntry) -> Any:
    """Read or render off the event loop; every failure becomes an answer, never a 500."""
    try:
        return await asyncio.to_thread(read, entry)
    except FileNotFoundError:
        raise NotFound(f"report {entry.id} was just removed") from None
    except OSError as exc:
        raise StorageUnavailable(f"report {entry.id} cannot be read", detail=str(exc)) from exc
    except Exception as exc:  # an unreadable or incompatible snapshot
        raise ReportUnavailable(f"report {entry.id} cannot be rendered: {type(exc).__name__}") from exc


def _find(store: ReportStore, model: str, at: float | None, report_id: str | None) -> ReportEntry:
    if at is not None and report_id is not None:
        raise ValidationFailed(
            [FieldError(("query", "id"), "give either `at` or `id`, not both", "value_error", report_id)]
        )
    if report_id is not None:
        if not REPORT_ID.match(report_id):
            raise ValidationFailed(
                [FieldError(("query", "id"), "not a report id (see the list)", "value_error", report_id)]
            )
        entry = store.get(report_id)
        if entry is None:
            raise NotFound(f"model {model!r} keeps no report {report_id!r}")
        return entry
    entry = store.latest() if at is None else store.at(at)
    if entry is not None:
        return entry
    if store.latest() is None:
        raise NotFound(
            f"model {model!r} has no stored report yet (POST /v1/models/{model}/calculate stores one)"
        )
    oldest = store.oldest()
    assert oldest is not None
    raise NotFound(
        f"model {model!r} keeps no report from that time; the oldest is from {oldest.as_dict()['time_iso']}"
    )


def _parse_at(value: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC when it has no zone)."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationFailed(
                [
                    FieldError(
                        ("query", "at"), "expected Unix seconds or an ISO 8601 time", "value_error", value
                    )
                ]
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(seconds):
        raise ValidationFailed([FieldError(("query", "at"), "must be a finite time", "value_error", value)])
    return seconds
