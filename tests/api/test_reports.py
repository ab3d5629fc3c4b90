"""GET /v1/models/{m}/reports and /report: stored reports by time or id, with a strict page policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor_service.config import ModelConfig, MonitorConfig, ReportsConfig, load_config
from monitor_service.reports import ReportStore
from monitor_service.results import CalculationResult
from tests.conftest import diamonds_model, write_config
from tests.support.reports import app_with_reports, calculation, production_rows

T0 = 1_764_450_000.0


@pytest.fixture(scope="module")
def real() -> tuple[CalculationResult, str]:
    model = ModelConfig.model_validate(diamonds_model())
    return calculation(model, production_rows(800), T0)


def _client(config: MonitorConfig, store: ReportStore) -> Iterator[TestClient]:
    with TestClient(app_with_reports(config, {"diamonds": store})) as client:
        yield client


@pytest.fixture
def store(tmp_path: Path) -> ReportStore:
    return ReportStore.for_model("diamonds", tmp_path, ReportsConfig(max_age=None))


@pytest.fixture
def api(config: MonitorConfig, store: ReportStore) -> Iterator[TestClient]:
    yield from _client(config, store)


def _put(store: ReportStore, real: tuple[CalculationResult, str], at: float, **changes: object) -> str:
    from dataclasses import replace

    result = replace(real[0], finished_at=at, **changes)
    return store.put(result, real[1]).id


def test_reports_list_is_newest_first_with_verdicts(
    api: TestClient, store: ReportStore, real: tuple[CalculationResult, str]
) -> None:
    first = _put(store, real, T0)
    second = _put(store, real, T0 + 300, dataset_drift=True, drifted_columns=7)
    body = api.get("/v1/models/diamonds/reports").json()
    assert body["count"] == 2
    assert [r["id"] for r in body["reports"]] == [second, first]
    assert body["reports"][0]["dataset_drift"] is True
    assert body["reports"][0]["drifted_columns"] == 7
    assert body["reports"][1]["time_iso"] == "2025-11-29T21:00:00.000+00:00"
    assert body["bytes"] == 2 * len(real[1].encode())
    assert api.get("/v1/models/diamonds/reports", params={"limit": 1}).json()["reports"][0]["id"] == second


def test_report_serves_the_latest_with_a_strict_policy(
    api: TestClient, store: ReportStore, real: tuple[CalculationResult, str]
) -> None:
    _put(store, real, T0)
    latest = _put(store, real, T0 + 300)
    response = api.get("/v1/models/diamonds/report")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-report-id"] == latest
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert policy.count("'sha256-") >= 3
    assert "drawDashboard" in response.text


def test_report_at_a_time_serves_the_calculation_then_in_force(
    api: TestClient, store: ReportStore, real: tuple[CalculationResult, str]
) -> None:
    first = _put(store, real, T0)
    second = _put(store, real, T0 + 300)
    cases = {
        str(T0 + 299): first,
        str(T0 + 300): second,
        "2025-11-29T21:04:00Z": first,  # T0 is 21:00:00 UTC
        "2025-11-29T21:05:00": second,  # no zone: UTC
        "2025-11-29T22:05:00+01:00": second,
    }
    for at, expected in cases.items():
        response = api.get("/v1/models/diamonds/report", params={"at": at})
        assert response.status_code == 200, at
        assert response.headers["x-report-id"] == expected, at
    assert api.get("/v1/models/diamonds/report", params={"id": first}).headers["x-report-id"] == first


def test_report_as_json_is_evidentlys_snapshot(
    api: TestClient, store: ReportStore, real: tuple[CalculationResult, str]
) -> None:
    from evidently.core.report import Snapshot

    report_id = _put(store, real, T0)
    response = api.get("/v1/models/diamonds/report", params={"id": report_id, "format": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert f'filename="diamonds-{report_id}.json"' in response.headers["content-disposition"]
    snapshot = Snapshot.loads(response.text)
    assert json.loads(response.text)["metadata"]["model"] == "diamonds"
    assert snapshot.tests_results, "the test suite is part of the stored report"


@pytest.mark.parametrize(
    ("params", "status", "loc"),
    [
        ({"at": "yesterday"}, 422, ["query", "at"]),
        ({"at": "nan"}, 422, ["query", "at"]),
        ({"id": "../../etc/passwd"}, 422, ["query", "id"]),
        ({"id": "20251129T210000000Z-00000000", "at": "1"}, 422, ["query", "id"]),
        ({"format": "pdf"}, 422, ["query", "format"]),
    ],
)
def test_report_rejects_bad_parameters_field_by_field(
    api: TestClient,
    store: ReportStore,
    real: tuple[CalculationResult, str],
    params: dict[str, str],
    status: int,
    loc: list[str],
) -> None:
    _put(store, real, T0)
    response = api.get("/v1/models/diamonds/report", params=params)
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"] == loc


def test_report_not_found_cases_say_why(
    api: TestClient, store: ReportStore, real: tuple[CalculationResult, str]
) -> None:
    none_yet = api.get("/v1/models/diamonds/report")
    assert none_yet.status_code == 404
    assert "no stored report yet" in none_yet.json()["detail"]
    _put(store, real, T0)
    too_early = api.get("/v1/models/diamonds/report", params={"at": str(T0 - 1)})
    assert too_early.status_code == 404
    assert "oldest is from 2025-11-29T21:00:00.000+00:00" in too_early.json()["detail"]
    unknown_id = api.get("/v1/models/diamonds/report", params={"id": "20251129T210000000Z-00000000"})
    assert unknown_id.status_code == 404
    assert api.get("/v1/models/nope/report").status_code == 404
    assert api.get("/v1/models/nope/reports").status_code == 404


def test_report_of_an_unreadable_snapshot_is_409(api: TestClient, store: ReportStore) -> None:
    from monitor_service.results import CalculationResult as Result

    result = Result("diamonds", T0, 0.1, 10, 10, 0.5, False, 0, 9)
    store.put(result, '{"not": "a snapshot"}')
    response = api.get("/v1/models/diamonds/report")
    assert response.status_code == 409
    assert "cannot be rendered" in response.json()["detail"]


def test_reports_need_the_admin_token_when_one_is_set(
    tmp_path: Path, store: ReportStore, real: tuple[CalculationResult, str]
) -> None:
    config = load_config(
        write_config(tmp_path / "monitor.yaml", [diamonds_model()], admin_token="admin-secret"), environ={}
    )
    _put(store, real, T0)
    for client in _client(config, store):
        for path in ("/v1/models/diamonds/reports", "/v1/models/diamonds/report"):
            assert client.get(path).status_code == 401
            ok = client.get(path, headers={"Authorization": "Bearer admin-secret"})
            assert ok.status_code == 200
