"""Dependencies shared by the routers: the service, body reading with limits, bearer-token checks."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from monitor_service.errors import BadRequest, PayloadTooLarge, Unauthorized
from monitor_service.log_throttle import ThrottledLog
from monitor_service.service import MonitorService
from monitor_service.telemetry import ServiceMetrics

_disconnects = ThrottledLog(logging.getLogger(__name__), interval=10.0)


def _service(request: Request) -> MonitorService:
    service: MonitorService = request.app.state.service
    return service


# Dependencies are `async def` so FastAPI runs them on the event loop: a plain `def` dependency
# costs a hand-off to the thread pool on every request (about half the time of a 1-row request).
async def get_service(request: Request) -> MonitorService:
    return _service(request)


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


ServiceDep = Annotated[MonitorService, Depends(get_service)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody reads the answer; one log line (not a traceback) per 10 s however many clients do it.
        _disconnects.log(
            logging.INFO, "disconnect", "clients disconnected before sending their whole request body"
        )
        raise BadRequest("the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def _bearer_matches(request: Request, expected: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


def _check_bearer(request: Request, expected: str | None) -> None:
    if expected is not None and not _bearer_matches(request, expected):
        raise Unauthorized()


async def require_read_token(request: Request) -> None:
    """Reads (model list, results, the API description) need the read or the admin token when
    either is configured; with neither, they are open."""
    accepted = _service(request).config.server.read_tokens
    if accepted and not any(_bearer_matches(request, token) for token in accepted):
        raise Unauthorized()


async def require_ingest_token(request: Request) -> None:
    """Ingestion needs the ingest token when one is configured (the admin token also works)."""
    server = _service(request).config.server
    if server.ingest_token is None:
        return
    if server.admin_token and _bearer_matches(request, server.admin_token):
        return
    _check_bearer(request, server.ingest_token)


async def require_admin_token(request: Request) -> None:
    _check_bearer(request, _service(request).config.server.admin_token)


async def require_metrics_token(request: Request) -> None:
    _check_bearer(request, _service(request).config.server.metrics_token)


async def require_probe_token(request: Request) -> None:
    server = _service(request).config.server
    if server.protect_probes:
        _check_bearer(request, server.metrics_token)


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "missing or wrong bearer token"}}
