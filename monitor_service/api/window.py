"""GET /v1/models/{model}/window: the rows now in a model's window (admin: they are raw values)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query

from monitor_service.api.deps import UNAUTHORIZED, ServiceDep, require_admin_token
from monitor_service.errors import FieldError, ValidationFailed
from monitor_service.schema import preview

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get(
    "/{model}/window",
    summary="Export the window",
    dependencies=[Depends(require_admin_token)],
    responses={**UNAUTHORIZED, 404: {"description": "unknown model"}, 422: {"description": "unknown column"}},
)
async def export_window(
    model: str,
    service: ServiceDep,
    columns: Annotated[str | None, Query(description="comma-separated columns (default: all)")] = None,
) -> dict[str, Any]:
    """The rows now in the window, column by column in arrival order (event-time order with
    `window.age_by: event_time`), nulls as null."""
    state = service.model(model)
    await state.catch_up()  # cluster mode: the window as the stream holds it now
    rows = state.window_rows(time.time())
    wanted = columns.split(",") if columns else list(rows.columns)
    problems = [
        FieldError(("query", "columns"), f"Unknown column {preview(c)!r}", "value_error", preview(c))
        for c in dict.fromkeys(wanted)
        if c not in rows.columns
    ][:100]
    if len(wanted) != len(set(wanted)):
        problems.append(FieldError(("query", "columns"), "A column is named twice", "duplicate", None))
    if problems:
        raise ValidationFailed(problems)
    return {
        "model": model,
        "rows": rows.rows,
        "columns": {name: _json_values(rows.columns[name]) for name in wanted},
    }


def _json_values(array: np.ndarray) -> list[Any]:
    values: list[Any] = array.tolist()
    if array.dtype.kind == "f":
        return [None if v != v else v for v in values]
    return values
