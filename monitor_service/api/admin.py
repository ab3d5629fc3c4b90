"""Administration: reload the configuration file without a restart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from monitor_service.api.deps import UNAUTHORIZED, ServiceDep, require_admin_token
from monitor_service.config import load_config
from monitor_service.errors import Conflict

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    summary="Reload the configuration file",
    dependencies=[Depends(require_admin_token)],
    responses={
        **UNAUTHORIZED,
        409: {"description": "the change needs a restart (nothing applied), or no config file is known"},
        422: {"description": "the file is invalid (every problem listed; nothing applied)"},
    },
)
async def reload_config(request: Request, service: ServiceDep) -> dict[str, Any]:
    """Re-read the file the server started with and apply drift settings, schedules, metrics,
    labels, window ages and references to the running models, keeping their windows."""
    path = request.app.state.config_path
    if path is None:
        raise Conflict("the server was not started from a configuration file", "no_config_file")
    changed = await service.reload(load_config(path))
    return {"config": str(path), "changed": changed}
