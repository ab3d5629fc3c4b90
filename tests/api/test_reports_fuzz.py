"""Schemathesis against the reports routes: no 5xx, every answer as documented (see
tests/api/test_openapi_fuzz.py for the approach)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.python.asgi import shutdown_lifespans

from monitor_service.config import ModelConfig, ReportsConfig, load_config
from monitor_service.reports import MemoryBackend, ReportStore
from monitor_service.results import CalculationResult
from tests.conftest import diamonds_model, write_config
from tests.support.reports import app_with_reports, calculation, production_rows

OPERATIONS = [("GET", "/v1/models/{model}/reports"), ("GET", "/v1/models/{model}/report")]
FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def real() -> tuple[CalculationResult, str]:
    return calculation(ModelConfig.model_validate(diamonds_model()), production_rows(400), 1_764_450_000.0)


def _api(tmp_path: Path, real: tuple[CalculationResult, str], **server: Any) -> schemathesis.BaseSchema:
    config = load_config(write_config(tmp_path / "monitor.yaml", [diamonds_model()], **server), environ={})
    store = ReportStore("diamonds", MemoryBackend(), ReportsConfig(max_age=None))
    for offset in (0, 300):
        store.put(replace(real[0], finished_at=real[0].finished_at + offset), real[1])
    app = app_with_reports(config, {"diamonds": store})
    # With tokens, the description itself needs the read (or admin) token.
    headers = {"Authorization": f"Bearer {server['admin_token']}"} if "admin_token" in server else {}
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)


@pytest.fixture
def api(tmp_path: Path, real: tuple[CalculationResult, str]) -> Iterator[schemathesis.BaseSchema]:
    yield _api(tmp_path, real)
    shutdown_lifespans()


@pytest.fixture
def protected_api(tmp_path: Path, real: tuple[CalculationResult, str]) -> Iterator[schemathesis.BaseSchema]:
    yield _api(tmp_path, real, admin_token="admin-secret")
    shutdown_lifespans()


def _fuzz(
    api: schemathesis.BaseSchema, operation: tuple[str, str], mode: GenerationMode, pinned: bool
) -> None:
    method, path = operation

    @FUZZ
    @given(
        case=api[path][method].as_strategy(mode, path_parameters={"model": "diamonds"} if pinned else None)
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])

    run()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[p for _, p in OPERATIONS])
@pytest.mark.parametrize("pinned", [True, False], ids=["configured-model", "any-model"])
def test_reports_routes_answer_valid_requests_without_5xx_and_as_documented(
    api: schemathesis.BaseSchema, operation: tuple[str, str], pinned: bool
) -> None:
    _fuzz(api, operation, GenerationMode.POSITIVE, pinned)


@pytest.mark.parametrize("pinned", [True, False], ids=["configured-model", "any-model"])
def test_reports_list_rejects_invalid_requests_as_documented(
    api: schemathesis.BaseSchema, pinned: bool
) -> None:
    # /report's parameters are free strings, checked by the handler (tests/api/test_reports.py)
    _fuzz(api, OPERATIONS[0], GenerationMode.NEGATIVE, pinned)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[p for _, p in OPERATIONS])
def test_reports_routes_document_401_when_the_admin_token_is_set(
    protected_api: schemathesis.BaseSchema, operation: tuple[str, str]
) -> None:
    _fuzz(protected_api, operation, GenerationMode.POSITIVE, pinned=True)
