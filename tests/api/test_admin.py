from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import diamonds_model, rows_of, write_config

RELOAD = "/v1/admin/reload"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path / "monitor.yaml", [diamonds_model()], admin_token="adm")


@pytest.fixture
def admin(config_file: Path) -> Iterator[TestClient]:
    app = create_app(load_config(config_file, environ={}), config_path=config_file, start_scheduler=False)
    with TestClient(app, headers={"authorization": "Bearer adm"}) as client:
        yield client


def _edit(path: Path, change: dict[str, Any]) -> None:
    raw = yaml.safe_load(path.read_text())
    raw["models"][0].update(change)
    path.write_text(yaml.safe_dump(raw))


def test_reload_applies_drift_settings_and_keeps_the_window(admin: TestClient, config_file: Path) -> None:
    admin.post("/v1/models/diamonds/rows", json={"rows": rows_of("drifted", 1500)})
    before = admin.post("/v1/models/diamonds/calculate").json()
    assert (before["mode"], before["drift_share"], before["dataset_drift"]) == ("tested", None, True)
    drift = {"mode": "legacy", "share": 1.0, "per_column": {"carat": {"stattest": "ks"}}}
    _edit(config_file, {"drift": drift})
    response = admin.post(RELOAD)
    assert response.status_code == 200
    assert response.json()["changed"] == ["diamonds"]
    after = admin.post("/v1/models/diamonds/calculate").json()
    assert after["current_rows"] == 1500
    assert (after["mode"], after["drift_share"], after["dataset_drift"]) == ("legacy", 1.0, False)
    assert next(c for c in after["columns"] if c["column"] == "carat")["stattest"] == "ks"


def test_reload_without_changes_changes_nothing(admin: TestClient) -> None:
    assert admin.post(RELOAD).json()["changed"] == []


def test_reload_refuses_changed_columns_and_applies_nothing(admin: TestClient, config_file: Path) -> None:
    model = diamonds_model()
    _edit(config_file, {"columns": {**model["columns"], "numerical": ["carat"]}, "drift": {"alpha": 0.01}})
    response = admin.post(RELOAD)
    assert response.status_code == 409
    assert "columns or window.max_rows of model 'diamonds'" in response.json()["detail"]
    admin.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 300)})
    assert admin.post("/v1/models/diamonds/calculate").json()["alpha"] == 0.025


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"task": "ranking"}, "models[0].task"),
        (
            {"drift": {"mode": "legacy", "stattest": "no_such_test"}},
            "models[0].drift.stattest: unknown stat test 'no_such_test'",
        ),
        ({"drift": {"per_column": {"cut": {"test": "g_test"}}}}, "models[0].drift.per_column.cut.test"),
        ({"reference": "/nonexistent.csv"}, "models[0].reference: cannot read"),
    ],
)
def test_reload_reports_every_problem_with_its_path(
    admin: TestClient, config_file: Path, change: dict[str, Any], expected: str
) -> None:
    _edit(config_file, change)
    response = admin.post(RELOAD)
    assert response.status_code == 422
    assert any(expected in problem for problem in response.json()["detail"])


def test_reload_needs_the_admin_token(config_file: Path) -> None:
    app = create_app(load_config(config_file, environ={}), config_path=config_file, start_scheduler=False)
    with TestClient(app) as client:
        assert client.post(RELOAD).status_code == 401
        assert client.post(RELOAD, headers={"authorization": "Bearer nope"}).status_code == 401


def test_reload_moves_configuration_gauges_at_once(admin: TestClient, config_file: Path) -> None:
    registry = admin.app.state.registry  # type: ignore[attr-defined]
    share = "drift_monitor_dataset_drift_share_threshold"
    admin.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 300)})
    admin.post("/v1/models/diamonds/calculate")
    assert registry.get_sample_value(share, {"model": "diamonds"}) is None  # tested mode: no share rule
    drift = {"mode": "legacy", "share": 0.8}
    _edit(config_file, {"drift": drift, "schedule": {"every": "5m", "min_rows": 10}})
    assert admin.post(RELOAD).status_code == 200
    assert registry.get_sample_value(share, {"model": "diamonds"}) == 0.8  # before any new calculation
    interval = "drift_monitor_schedule_interval_seconds"
    assert registry.get_sample_value(interval, {"model": "diamonds"}) == 300


@pytest.mark.parametrize(
    "change",
    [
        {"contracts": {"columns": {"carat": {"max": 3}}}},
        {"timestamps": {"without_zone": "reject"}},
    ],
)
def test_reload_refuses_changed_row_rules_and_applies_nothing(
    admin: TestClient, config_file: Path, change: dict[str, Any]
) -> None:
    _edit(config_file, change)
    response = admin.post(RELOAD)
    assert response.status_code == 409
    assert "contracts, timestamps or window.age_by of model 'diamonds'" in response.json()["detail"]
