"""Liveness, readiness and the Prometheus endpoint (a plain route, see client_python issue #1016)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor_service.api.deps import UNAUTHORIZED, ServiceDep, require_metrics_token, require_probe_token

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", summary="Liveness", dependencies=[Depends(require_probe_token)], responses=UNAUTHORIZED
)
async def healthz() -> dict[str, str]:
    """The process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    dependencies=[Depends(require_probe_token)],
    responses={**UNAUTHORIZED, 503: {"description": "not ready yet"}},
)
async def readyz(service: ServiceDep) -> JSONResponse:
    """Ready once references are loaded and the calculation worker has started."""
    if not service.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "models": list(service.models)})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_token)],
    responses=UNAUTHORIZED,
)
async def metrics(request: Request) -> Response:
    """Every metric of docs/metrics.md in the Prometheus text format."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
