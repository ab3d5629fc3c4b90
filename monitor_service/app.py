"""create_app(config) -> FastAPI: the one composition root. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, ProcessCollector
from starlette.middleware.trustedhost import TrustedHostMiddleware

from monitor_service import __version__
from monitor_service.api import admin, docs, health, ingest, models, reference, reports, window
from monitor_service.api.deps import require_read_token
from monitor_service.collector import DriftCollector
from monitor_service.config import MonitorConfig, config_warnings
from monitor_service.errors import ConfigError, MonitorError, SnapshotUnreadable
from monitor_service.process_memory import ProcessMemoryCollector, trim_memory, tune_malloc
from monitor_service.reports_collector import ReportsCollector
from monitor_service.scheduler import Scheduler
from monitor_service.service import MonitorService
from monitor_service.telemetry import ServiceMetrics

log = logging.getLogger(__name__)


async def _error_response(_request: Request, exc: Exception) -> JSONResponse:
    """Every domain error answers with its own status, body and headers."""
    assert isinstance(exc, MonitorError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def create_app(
    config: MonitorConfig,
    *,
    config_path: Path | None = None,
    start_scheduler: bool = True,
    accept_data_loss: bool = False,
) -> FastAPI:
    """Build the whole service from a validated config; references are loaded here."""
    tune_malloc()  # before the references and windows are allocated
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, [model.name for model in config.models])

    def observe_calculation(model: str, seconds: float) -> None:
        metrics.calculation_duration.labels(model).observe(seconds)

    service = MonitorService.build(
        config, accept_data_loss=accept_data_loss, observe_calculation=observe_calculation
    )
    trim_memory()  # what reading the references left in the allocators
    registry.register(DriftCollector(service.stats, version("evidently")))
    if service.member is not None:  # cluster mode: this member's own cluster metrics
        from monitor_service.cluster.metrics import ClusterCollector

        registry.register(ClusterCollector(service.member))
    ProcessCollector(registry=registry)
    worker = service.worker
    registry.register(ProcessMemoryCollector(worker.pids if worker.kind == "process" else None))
    registry.register(ReportsCollector(service.reports, service.exporters))
    scheduler = Scheduler(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.start()
        except (ConfigError, SnapshotUnreadable) as exc:
            log.error("%s", exc)
            app.state.start_error = exc
            service.close()
            raise
        except BaseException:
            service.close()  # no worker process or open log may outlive a failed start
            raise
        for warning in [*config_warnings(config), *service.warnings]:
            log.warning("%s", warning)
        if start_scheduler:
            scheduler.start()
        log.debug("start-up done: models %s", ", ".join(service.models))  # "ready" is logged once listening
        try:
            yield
        finally:
            await scheduler.stop()
            await service.shutdown()

    app = FastAPI(
        title="Drift monitor",
        version=__version__,
        description="Streaming drift monitor sidecar: POST inference rows, read Evidently drift and "
        "quality results as JSON or on /metrics.",
        lifespan=lifespan,
        # Served by api/docs.py from packaged assets (no CDN), where a token check can attach.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.start_error = None
    app.state.config_path = config_path
    app.state.service = service
    app.state.metrics = metrics
    app.state.registry = registry
    app.add_exception_handler(MonitorError, _error_response)
    if config.server.allowed_hosts is not None:  # against DNS rebinding (docs/security.md)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=config.server.allowed_hosts)
    for router in (health, ingest, models, reports, reference, window, admin):
        app.include_router(router.router)
    app.include_router(docs.create_router(dependencies=[Depends(require_read_token)]))
    return app
