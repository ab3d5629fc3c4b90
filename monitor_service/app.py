"""create_app(config) -> FastAPI: wiring, lifespan, error handlers, routers. Nothing at import time."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, ProcessCollector

from monitor_service import __version__
from monitor_service.api import admin, health, ingest, models
from monitor_service.calculator import Calculator
from monitor_service.collector import DriftCollector
from monitor_service.config import MonitorConfig
from monitor_service.errors import (
    BadRequest,
    CalculationFailed,
    CalculationNotPossible,
    ConfigError,
    MonitorError,
    PayloadTooLarge,
    RateLimited,
    ReloadNeedsRestart,
    ReportUnavailable,
    StorageUnavailable,
    UnknownModel,
    ValidationFailed,
)
from monitor_service.monitor import Monitor
from monitor_service.runtime import build_runtimes
from monitor_service.scheduler import Scheduler
from monitor_service.telemetry import ServiceMetrics

log = logging.getLogger(__name__)


def _error_response(exc: MonitorError) -> JSONResponse:
    if isinstance(exc, ValidationFailed):
        body = {"detail": [e.as_dict() for e in exc.errors], "error_count": exc.total_errors}
        return JSONResponse(body, status_code=422)
    if isinstance(exc, UnknownModel):
        return JSONResponse({"detail": str(exc)}, status_code=404)
    if isinstance(exc, PayloadTooLarge):
        return JSONResponse({"detail": str(exc), "reason": exc.reason}, status_code=413)
    if isinstance(exc, BadRequest):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    if isinstance(exc, ConfigError):
        return JSONResponse({"detail": exc.problems}, status_code=422)
    if isinstance(exc, CalculationNotPossible | ReportUnavailable | ReloadNeedsRestart):
        return JSONResponse({"detail": str(exc)}, status_code=409)
    if isinstance(exc, RateLimited):
        return JSONResponse(
            {"detail": str(exc), "reason": exc.reason},
            status_code=429,
            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        )
    if isinstance(exc, StorageUnavailable):
        return JSONResponse(
            {"detail": str(exc), "reason": "storage_unavailable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, CalculationFailed):
        return JSONResponse({"detail": str(exc)}, status_code=500)
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def _handle_monitor_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MonitorError)
    return _error_response(exc)


def create_app(
    config: MonitorConfig, *, config_path: Path | None = None, start_scheduler: bool = True
) -> FastAPI:
    """Build the whole service from a validated config; references are loaded here."""
    registry = CollectorRegistry()
    runtimes = build_runtimes(config)
    for runtime in runtimes.values():
        for warning in runtime.quality_check.warnings:
            log.warning("model %s: %s", runtime.name, warning)
    metrics = ServiceMetrics(registry, list(runtimes))
    monitor = Monitor(config, runtimes, Calculator(config.server.executor), metrics)
    registry.register(DriftCollector(monitor, version("evidently")))
    ProcessCollector(registry=registry)
    scheduler = Scheduler(monitor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await monitor.start()
        except ConfigError as exc:
            log.error("%s", exc)
            app.state.config_error = exc
            monitor.close()
            raise
        except BaseException:
            monitor.close()  # no worker process or open log may outlive a failed start
            raise
        if start_scheduler:
            scheduler.start()
        log.info("drift monitor ready: models %s", ", ".join(runtimes))
        try:
            yield
        finally:
            await scheduler.stop()
            await monitor.shutdown()

    app = FastAPI(
        title="Drift monitor",
        version=__version__,
        description="Streaming drift monitor sidecar: POST inference rows, read Evidently drift and "
        "quality results as JSON or on /metrics.",
        lifespan=lifespan,
    )
    app.state.config_error = None
    app.state.config_path = config_path
    app.state.monitor = monitor
    app.state.metrics = metrics
    app.state.registry = registry
    app.add_exception_handler(MonitorError, _handle_monitor_error)
    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(models.router)
    app.include_router(admin.router)
    return app
