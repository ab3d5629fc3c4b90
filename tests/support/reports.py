"""Helpers for the stored-report tests: real snapshots of the bundled data, and an app serving them.

`app_with_reports` is the app the composition root builds, with given ReportStores in place of the
models' own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fastapi import FastAPI

from monitor_service import engine
from monitor_service.app import create_app
from monitor_service.config import ModelConfig, MonitorConfig
from monitor_service.engine.snapshot import build_snapshot
from monitor_service.reports import ReportStore
from monitor_service.results import CalculationResult
from tests.conftest import rows_of
from tests.support.frames import frames


def calculation(model: ModelConfig, rows: list[dict[str, Any]], at: float) -> tuple[CalculationResult, str]:
    """A real calculation of `rows` finished at `at`, and its snapshot JSON."""
    reference, current = frames(model, rows)
    result = replace(engine.compute(model, reference, current), finished_at=at)
    return result, build_snapshot(model, reference, current, result)


def production_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return rows_of("production", count, start)


def app_with_reports(config: MonitorConfig, stores: Mapping[str, ReportStore]) -> FastAPI:
    """The app as the composition root builds it, with `stores` in place of the models' own."""
    app = create_app(config, start_scheduler=False)
    app.state.service.reports.update(stores)
    return app
