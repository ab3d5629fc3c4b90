from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import MonitorConfig, load_config
from monitor_service.journal import MemoryJournal
from monitor_service.journal.local import LocalJournal
from monitor_service.model_state import ModelState
from tests.conftest import diamonds_model, rows_of, write_config
from tests.support.processes import poll_until

ROWS = "/v1/models/diamonds/rows"


@pytest.fixture
def durable_config(tmp_path: Path) -> MonitorConfig:
    path = write_config(tmp_path / "monitor.yaml", [diamonds_model()])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    return load_config(path, environ={})


def _client(config: MonitorConfig, *, scheduler: bool = False) -> TestClient:
    return TestClient(create_app(config, start_scheduler=scheduler))


def _state(client: TestClient) -> ModelState:
    state: ModelState = client.app.state.service.models["diamonds"]  # type: ignore[attr-defined]
    return state


def _crash(client: TestClient) -> None:
    """As if the process died here: the log stays as written, no checkpoint is taken at exit."""
    state = _state(client)
    state.journal.close()
    state.journal = MemoryJournal()


def _ids(client: TestClient) -> list[str]:
    ids: list[str] = client.get("/v1/models/diamonds/window?columns=request_id").json()["columns"][
        "request_id"
    ]
    return ids


def test_restart_restores_rows_labels_and_pending_labels(durable_config: MonitorConfig) -> None:
    rows = rows_of("production", 30)
    for row in rows:
        del row["price"]
    with _client(durable_config) as client:
        client.post(ROWS, json={"rows": rows[:20]})
        client.post(
            "/v1/models/diamonds/labels",
            json={"labels": [{"id": "d-3", "target": 7.0}, {"id": "d-25", "target": 9.0}]},
        )
    with _client(durable_config) as client:  # the first app checkpointed its window on exit
        assert _ids(client) == [f"d-{i}" for i in range(20)]
        client.post(ROWS, json={"rows": rows[20:]})
        prices = client.get("/v1/models/diamonds/window?columns=request_id,price").json()["columns"]["price"]
        assert prices[3] == 7.0
        assert prices[25] == 9.0  # the label waited for its row across the restart


def test_full_disk_answers_503_changes_nothing_and_recovers(durable_config: MonitorConfig) -> None:
    with _client(durable_config, scheduler=True) as client:
        assert client.post(ROWS, json={"rows": rows_of("production", 5)}).status_code == 202
        log = _state(client).journal
        assert isinstance(log, LocalJournal) and log._fd is not None
        full = os.open("/dev/full", os.O_WRONLY)
        saved = os.dup(log._fd)
        os.dup2(full, log._fd)  # the kernel answers ENOSPC from now on
        os.close(full)
        response = client.post(ROWS, json={"rows": rows_of("production", 5, start=5)})
        assert response.status_code == 503
        assert response.json()["reason"] == "storage_unavailable"
        assert response.headers["retry-after"] == "5"
        assert _ids(client) == [f"d-{i}" for i in range(5)]
        registry = client.app.state.registry  # type: ignore[attr-defined]
        labels = {"model": "diamonds", "reason": "storage_unavailable"}
        assert registry.get_sample_value("drift_monitor_rows_rejected_total", labels) == 5
        os.dup2(saved, log._fd)
        os.close(saved)
        # The storage task reopens a log it could not repair, so ingestion resumes by itself.
        retry = {"rows": rows_of("production", 5, start=5)}
        poll_until(
            lambda: client.post(ROWS, json=retry).status_code == 202, timeout=10, message="ingest resumes"
        )
        assert _ids(client) == [f"d-{i}" for i in range(10)]


def test_torn_log_tail_is_skipped_and_counted(durable_config: MonitorConfig) -> None:
    with _client(durable_config) as client:
        for start in range(0, 30, 10):
            client.post(ROWS, json={"rows": rows_of("production", 10, start=start)})
        log = _state(client).journal
        assert isinstance(log, LocalJournal)
        segment = log.segments()[-1][1]
        _crash(client)
    with segment.open("r+b") as handle:
        handle.truncate(segment.stat().st_size - 7)
    with _client(durable_config) as client:
        assert _ids(client) == [f"d-{i}" for i in range(20)]
        registry = client.app.state.registry  # type: ignore[attr-defined]
        model = {"model": "diamonds"}
        assert registry.get_sample_value("drift_monitor_log_corrupt_records_total", model) == 1
        assert registry.get_sample_value("drift_monitor_log_invalid_records_total", model) == 0
        assert registry.get_sample_value("drift_monitor_log_replayed_records_total", model) == 2


def test_window_export_rejects_unknown_column(client: TestClient) -> None:
    response = client.get("/v1/models/diamonds/window?columns=carat,nope")
    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == "nope"


def test_window_export_gives_rows_in_arrival_order(client: TestClient) -> None:
    client.post(ROWS, json={"rows": rows_of("production", 3)})
    body = client.get("/v1/models/diamonds/window").json()
    assert body["rows"] == 3
    assert body["columns"]["request_id"] == ["d-0", "d-1", "d-2"]
    assert body["columns"]["carat"] == [r["carat"] for r in rows_of("production", 3)]


def test_restart_without_new_rows_still_leaves_a_checkpoint(durable_config: MonitorConfig) -> None:
    with _client(durable_config) as client:
        client.post(ROWS, json={"rows": rows_of("production", 12)})
        _crash(client)
    with _client(durable_config) as client:  # replays the log, then stops cleanly with no new rows
        assert len(_ids(client)) == 12
    with _client(durable_config) as client:
        registry = client.app.state.registry  # type: ignore[attr-defined]
        assert (
            registry.get_sample_value("drift_monitor_log_replayed_records_total", {"model": "diamonds"}) == 0
        )
        assert len(_ids(client)) == 12


def test_records_that_no_longer_validate_are_skipped_and_counted_apart(tmp_path: Path) -> None:
    path = write_config(tmp_path / "monitor.yaml", [diamonds_model()])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    rows = rows_of("production", 10)
    for row in rows:
        del row["price"]
    with _client(load_config(path, environ={})) as client:
        client.post(ROWS, json={"rows": rows})
        client.post("/v1/models/diamonds/labels", json={"labels": [{"id": "d-1", "target": 5.0}]})
        _crash(client)
    model = diamonds_model()
    del model["columns"]["target"]  # labels can no longer be joined
    path = write_config(tmp_path / "monitor.yaml", [model])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    with _client(load_config(path, environ={})) as client:
        assert len(_ids(client)) == 10
        registry = client.app.state.registry  # type: ignore[attr-defined]
        model = {"model": "diamonds"}
        assert registry.get_sample_value("drift_monitor_log_invalid_records_total", model) == 1
        assert registry.get_sample_value("drift_monitor_log_corrupt_records_total", model) == 0
        assert registry.get_sample_value("drift_monitor_log_replayed_records_total", model) == 2
