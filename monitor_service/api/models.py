"""Model listing, latest results and on-demand calculation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from monitor_service.api.deps import UNAUTHORIZED, ServiceDep, require_admin_token, require_read_token
from monitor_service.model_state import ModelStats

router = APIRouter(prefix="/v1/models", tags=["models"])


def _summary(stats: ModelStats) -> dict[str, Any]:
    name = stats.name
    return {
        "name": name,
        "task": stats.task,
        "window_rows": stats.window_rows,
        "window_max_rows": stats.window_max_rows,
        "reference_rows": stats.reference_rows,
        "schedule_every_seconds": stats.schedule_every,
        "min_rows": stats.min_rows,
        **stats.confirmation.summary(),
        **stats.status.as_dict(),
        "links": {
            "rows": f"/v1/models/{name}/rows",
            "results": f"/v1/models/{name}/results",
            "calculate": f"/v1/models/{name}/calculate",
            "report": f"/v1/models/{name}/report",
        },
    }


@router.get(
    "",
    summary="List monitored models",
    dependencies=[Depends(require_read_token)],
    responses=UNAUTHORIZED,
)
async def list_models(service: ServiceDep) -> dict[str, Any]:
    """Every configured model with its window size, last calculation time and status."""
    return {"models": [_summary(stats) for stats in service.stats()]}


@router.get(
    "/{model}/results",
    summary="Latest results",
    dependencies=[Depends(require_read_token)],
    responses={**UNAUTHORIZED, 404: {"description": "unknown model"}},
)
async def get_results(model: str, service: ServiceDep) -> dict[str, Any]:
    """The last successful calculation (null before the first) and the status of the last attempt."""
    stats = service.stats_of(model)
    return {**_summary(stats), "result": stats.status.latest.as_dict() if stats.status.latest else None}


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
async def calculate_now(model: str, service: ServiceDep) -> dict[str, Any]:
    """Run one calculation on the current window, publish it, store its report and return it."""
    result = await service.calculate(model, keep_report=True)
    return result.as_dict()
