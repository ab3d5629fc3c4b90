"""Event times: ISO strings without a zone, plausibility bounds, window age by event time, lag."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import ModelConfig, load_config
from monitor_service.errors import ConfigError, ValidationFailed
from monitor_service.schema import RowSchema, validate_rows
from tests.conftest import diamonds_model, rows_of, write_config

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp()
ROWS = "/v1/models/diamonds/rows"


def _model(**extra: Any) -> dict[str, Any]:
    model = diamonds_model(**extra)
    model["columns"] = {**model["columns"], "timestamp": "ts"}
    return model


def _schema(**extra: Any) -> RowSchema:
    return RowSchema.from_model(ModelConfig.model_validate(_model(**extra)))


def _stamps(schema: RowSchema, values: list[Any], now: float = NOW) -> list[float]:
    rows = [{**row, "ts": v} for row, v in zip(rows_of("production", len(values)), values, strict=True)]
    return [float(v) for v in validate_rows(rows, schema, now).columns["ts"]]


def _error(schema: RowSchema, value: Any) -> Any:
    with pytest.raises(ValidationFailed) as caught:
        _stamps(schema, [value])
    (error,) = caught.value.errors
    assert tuple(error.loc) == ("body", "rows", 0, "ts")
    return error


@pytest.fixture
def new_york() -> Iterator[None]:
    """The server's local zone is not UTC (time.tzset is POSIX only)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_iso_timestamp_without_zone_reads_as_utc_not_local_time() -> None:
    expected = datetime(2025, 5, 31, 8, 30, tzinfo=UTC).timestamp()
    assert (
        _stamps(_schema(), ["2025-05-31T08:30:00", "2025-05-31T08:30:00Z", "2025-05-31T04:30:00-04:00"])
        == [expected] * 3
    )
    assert _stamps(_schema(), ["2025-05-31"]) == [datetime(2025, 5, 31, tzinfo=UTC).timestamp()]


def test_iso_timestamp_without_zone_can_be_refused() -> None:
    schema = _schema(timestamps={"without_zone": "reject"})
    error = _error(schema, "2025-05-31T08:30:00")
    assert "time zone" in error.msg
    assert _stamps(schema, ["2025-05-31T08:30:00+00:00"]) == [
        datetime(2025, 5, 31, 8, 30, tzinfo=UTC).timestamp()
    ]


@pytest.mark.parametrize("value", [0, 0.0, "1970-01-01T00:00:00Z", 946684799, "1999-12-31T23:59:59Z"])
def test_timestamps_before_the_earliest_bound_are_refused_naming_it(value: Any) -> None:
    error = _error(_schema(), value)
    assert "2000-01-01T00:00:00Z" in error.msg and "timestamps.earliest" in error.msg


@pytest.mark.parametrize(
    "value",
    [
        "2230-01-01T00:00:00Z",
        datetime(2230, 1, 1, tzinfo=UTC).timestamp(),
        "9999-12-31T23:59:59Z",
        NOW + 2 * 86400,
    ],
)
def test_timestamps_after_the_latest_bound_are_refused_naming_it(value: Any) -> None:
    error = _error(_schema(), value)
    assert "after 1970" not in error.msg
    assert "2025-06-02T12:00:00Z" in error.msg and "timestamps.max_ahead" in error.msg


def test_millisecond_timestamps_are_refused_with_a_hint() -> None:
    assert "milliseconds" in _error(_schema(), NOW * 1000).msg


def test_timestamp_bounds_are_configurable() -> None:
    schema = _schema(timestamps={"earliest": "1970-01-01T00:00:00Z", "max_ahead": "400d"})
    assert _stamps(schema, [0, NOW + 300 * 86400]) == [0.0, NOW + 300 * 86400]
    assert "1970-01-01T00:00:00Z" in _error(schema, -1).msg


def test_timestamp_within_bounds_and_absent_timestamp_is_arrival() -> None:
    assert _stamps(_schema(), [NOW - 60, "2025-06-01T11:00:00+00:00", None]) == [NOW - 60, NOW - 3600, NOW]


def test_age_by_event_time_needs_a_timestamp_column(tmp_path: Path) -> None:
    model = diamonds_model(window={"max_rows": 100, "max_age": "1h", "age_by": "event_time"})
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path / "c.yaml", [model]), environ={})
    assert any("models[0].window" in p and "columns.timestamp" in p for p in caught.value.problems)


def _client(tmp_path: Path, **window: Any) -> TestClient:
    model = _model(window={"max_rows": 100, "max_age": "1h", **window})
    config = load_config(write_config(tmp_path / "c.yaml", [model]), environ={})
    return TestClient(create_app(config, start_scheduler=False))


def _post(client: TestClient, stamps: list[float]) -> None:
    rows = [
        {**row, "ts": stamp} for row, stamp in zip(rows_of("production", len(stamps)), stamps, strict=True)
    ]
    response = client.post(ROWS, json={"rows": rows})
    assert response.status_code == 202, response.text


def test_window_ages_by_arrival_by_default(tmp_path: Path) -> None:
    now = time.time()
    with _client(tmp_path) as client:
        _post(client, [now - 7200, now - 30])
        window = client.get("/v1/models/diamonds/window", params={"columns": "ts"}).json()
        assert window["columns"]["ts"] == [now - 7200, now - 30]


def test_window_ages_by_event_time_when_configured_and_exports_in_event_order(tmp_path: Path) -> None:
    now = time.time()
    with _client(tmp_path, age_by="event_time") as client:
        _post(client, [now - 30, now - 7200, now - 90, now - 3000])
        window = client.get("/v1/models/diamonds/window", params={"columns": "ts,request_id"}).json()
        assert window["columns"]["ts"] == [now - 3000, now - 90, now - 30]
        assert window["columns"]["request_id"] == ["d-3", "d-2", "d-0"]
        result = client.post("/v1/models/diamonds/calculate").json()
        assert result["current_rows"] == 3


def test_event_lag_histogram_shows_late_traffic(tmp_path: Path) -> None:
    now = time.time()
    with _client(tmp_path) as client:
        _post(client, [now - 2, now - 600, now - 600, now - 86400 * 3])
        registry = client.app.state.registry  # type: ignore[attr-defined]
        bucket = "drift_monitor_event_lag_seconds_bucket"
        assert registry.get_sample_value("drift_monitor_event_lag_seconds_count", {"model": "diamonds"}) == 4
        assert registry.get_sample_value(bucket, {"model": "diamonds", "le": "60.0"}) == 1
        assert registry.get_sample_value(bucket, {"model": "diamonds", "le": "900.0"}) == 3
        assert registry.get_sample_value(bucket, {"model": "diamonds", "le": "86400.0"}) == 3
        assert registry.get_sample_value(bucket, {"model": "diamonds", "le": "+Inf"}) == 4


def test_metrics_with_lags_and_contract_counts_pass_promtool(tmp_path: Path) -> None:
    now = time.time()
    model = _model(contracts={"columns": {"carat": {"max": 1, "missing": [-1], "on_violation": "keep"}}})
    config = load_config(write_config(tmp_path / "c.yaml", [model]), environ={})
    with TestClient(create_app(config, start_scheduler=False)) as client:
        rows = [{**row, "ts": now - 100, "carat": 5.0} for row in rows_of("production", 3)]
        rows[0]["carat"] = -1
        assert client.post(ROWS, json={"rows": rows}).status_code == 202
        text = client.get("/metrics").text
    violations = 'drift_monitor_contract_violations_total{action="keep",column="carat",model="diamonds"}'
    assert f"{violations} 2.0" in text
    assert 'drift_monitor_missing_codes_total{column="carat",model="diamonds"} 1.0' in text
    assert 'drift_monitor_event_lag_seconds_count{model="diamonds"} 3.0' in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (see .ci/run)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
