"""MonitorClient against the real monitor process: columnar, gzip-compressed batches land whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from monitor_service.client import MonitorClient
from tests.conftest import diamonds_model, rows_of, write_config
from tests.support.processes import RunningProcess, free_port, start_monitor

pytestmark = pytest.mark.integration
TOKEN = "client-e2e-token"


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[RunningProcess]:
    config = write_config(tmp_path / "monitor.yaml", [diamonds_model()], ingest_token=TOKEN)
    process = start_monitor(config, free_port(), tmp_path / "monitor.log", ready_path="/healthz", timeout=60)
    yield process
    assert process.stop(timeout=20) == 0, process.log_tail()


def test_client_columnar_gzip_batches_and_labels_land_on_the_real_monitor(monitor: RunningProcess) -> None:
    rows = rows_of("production", 1200)
    client = MonitorClient(monitor.base_url, token=TOKEN, batch_size=600, columnar_rows=100, gzip_bytes=1024)
    try:
        client.send_rows("diamonds", rows)
        client.send_labels("diamonds", [{"id": rows[0]["request_id"], "target": 1.5}])
        assert client.flush(timeout=30)
        stats = client.stats()
        assert (stats.sent, stats.rejected, stats.dropped_after_retries) == (1201, 0, 0)
        assert stats.batches_sent == 3
    finally:
        client.close()
    models = requests.get(f"{monitor.base_url}/v1/models", timeout=5).json()["models"]
    assert models[0]["window_rows"] == 1200
    window = requests.get(f"{monitor.base_url}/v1/models/diamonds/window?columns=request_id,price", timeout=5)
    columns = window.json()["columns"]
    assert columns["request_id"] == [row["request_id"] for row in rows]
    assert columns["price"][0] == 1.5
