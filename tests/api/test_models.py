from __future__ import annotations

import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from monitor_service.results import CalculationResult
from monitor_service.worker import CalculationWorker
from tests.conftest import rows_of


def test_models_lists_window_and_status(client: TestClient) -> None:
    client.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 30)})
    (model,) = client.get("/v1/models").json()["models"]
    assert model["name"] == "diamonds"
    assert model["window_rows"] == 30
    assert model["reference_rows"] == 10_000
    assert model["status"] == "waiting"
    assert model["last_success_at"] is None
    assert (model["dataset_drift_confirmed"], model["columns_drift_confirmed"]) == (None, [])


def test_calculate_publishes_results_and_metrics(client: TestClient) -> None:
    client.post("/v1/models/diamonds/rows", json={"rows": rows_of("drifted", 600)})
    response = client.post("/v1/models/diamonds/calculate")
    assert response.status_code == 200
    result = response.json()
    assert result["dataset_drift"] is True
    assert result["current_rows"] == 600
    latest = client.get("/v1/models/diamonds/results").json()
    assert latest["status"] == "ok"
    assert latest["dataset_drift_confirmed"] is False  # one calculation does not confirm (drift.confirm)
    assert latest["result"]["finished_at"] == result["finished_at"]
    registry = client.app.state.registry  # type: ignore[attr-defined]
    assert registry.get_sample_value("drift_monitor_dataset_drift", {"model": "diamonds"}) == 1
    carat = next(c for c in result["columns"] if c["column"] == "carat")
    score = registry.get_sample_value(
        "drift_monitor_column_drift_score",
        {"model": "diamonds", "column": "carat", "role": "feature", "stattest": carat["stattest"]},
    )
    assert score == carat["score"]
    assert registry.get_sample_value("drift_monitor_calculations_total", {"model": "diamonds"}) == 1
    count = registry.get_sample_value(
        "drift_monitor_calculation_duration_seconds_count", {"model": "diamonds"}
    )
    assert count == 1


def test_calculate_on_empty_window_is_409(client: TestClient) -> None:
    response = client.post("/v1/models/diamonds/calculate")
    assert response.status_code == 409
    assert "holds no rows" in response.json()["detail"]


class _BrokenWorker(CalculationWorker):
    """A worker whose engine fails the way a bad reference makes it fail."""

    async def compute(self, *_args: object, **_kwargs: object) -> CalculationResult:
        raise KeyError("carat")


def test_failed_calculation_keeps_last_result_and_counts_error(client: TestClient) -> None:
    client.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 100)})
    first = client.post("/v1/models/diamonds/calculate").json()
    client.app.state.service.worker = _BrokenWorker()  # type: ignore[attr-defined]
    failed = client.post("/v1/models/diamonds/calculate")
    assert failed.status_code == 500
    assert "KeyError" in failed.json()["detail"]
    latest = client.get("/v1/models/diamonds/results").json()
    assert latest["status"] == "failed"
    assert latest["errors"] == 1
    assert latest["result"]["finished_at"] == first["finished_at"]
    registry = client.app.state.registry  # type: ignore[attr-defined]
    assert registry.get_sample_value("drift_monitor_calculation_errors_total", {"model": "diamonds"}) == 1
    assert (
        registry.get_sample_value("drift_monitor_last_success_timestamp_seconds", {"model": "diamonds"})
        == (first["finished_at"])
    )


def test_unknown_model_results_is_404(client: TestClient) -> None:
    assert client.get("/v1/models/nope/results").status_code == 404
    assert client.post("/v1/models/nope/calculate").status_code == 404


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == ["diamonds"]


def test_metrics_is_plain_route_and_passes_promtool(client: TestClient) -> None:
    client.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 300)})
    client.post("/v1/models/diamonds/calculate")
    response = client.get("/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "process_resident_memory_bytes" in response.text
    assert (
        'drift_monitor_column_missing_values_ratio{column="carat",dataset="reference",model="diamonds"}'
        in (response.text)
    )
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (see .ci/run)")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=response.text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_admin_token_protects_calculate(config: object) -> None:
    from monitor_service.app import create_app
    from monitor_service.config import MonitorConfig

    assert isinstance(config, MonitorConfig)
    server = config.server.model_copy(update={"admin_token": "adm", "ingest_token": "ing"})
    with TestClient(
        create_app(config.model_copy(update={"server": server}), start_scheduler=False)
    ) as client:
        rows = {"rows": rows_of("production", 20)}
        assert client.post("/v1/models/diamonds/rows", json=rows).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert client.post("/v1/models/diamonds/rows", json=rows, headers=wrong).status_code == 401
        assert (
            client.post(
                "/v1/models/diamonds/rows", json=rows, headers={"authorization": "Bearer ing"}
            ).status_code
            == 202
        )
        assert (
            client.post("/v1/models/diamonds/calculate", headers={"authorization": "Bearer ing"}).status_code
            == 401
        )
        assert (
            client.post("/v1/models/diamonds/calculate", headers={"authorization": "Bearer adm"}).status_code
            == 200
        )
