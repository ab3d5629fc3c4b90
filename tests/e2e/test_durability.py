"""Acknowledged rows and labels survive SIGKILL: a sender posts as fast as it can while the real
server is killed at a random moment, several times; each restart recovers exactly what was
acknowledged (plus at most the batch in flight when the process died)."""

from __future__ import annotations

import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import diamonds_model, rows_of, write_config
from tests.support.processes import RunningProcess, free_port, poll_until, start_monitor

pytestmark = pytest.mark.integration

BATCH = 20
TEMPLATE = rows_of("production", BATCH)


@dataclass
class Sender:
    """Posts batches of rows (and, every fourth request, labels for the last batch) until stopped."""

    base_url: str
    prefix: str
    acked_rows: set[str] = field(default_factory=set)
    acked_labels: dict[str, float] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    requests_acked: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        number = 0
        while not self.stop.is_set():
            ids = [f"{self.prefix}-{number}-{i}" for i in range(BATCH)]
            rows = [
                {**{k: v for k, v in row.items() if k != "price"}, "request_id": row_id}
                for row, row_id in zip(TEMPLATE, ids, strict=True)
            ]
            self.in_flight = set(ids)
            if not self._post(session, "rows", {"rows": rows}):
                return
            self.acked_rows.update(ids)
            if number % 4 == 3:
                labels = {row_id: float(number + i) for i, row_id in enumerate(ids[:5])}
                body = {"labels": [{"id": k, "target": v} for k, v in labels.items()]}
                if not self._post(session, "labels", body):
                    return
                self.acked_labels.update(labels)
            self.in_flight = set()
            self.requests_acked += 1
            number += 1

    def _post(self, session: requests.Session, what: str, body: dict[str, Any]) -> bool:
        try:
            response = session.post(f"{self.base_url}/v1/models/diamonds/{what}", json=body, timeout=10)
        except requests.RequestException:
            return False  # the server died: this request's fate is unknown
        assert response.status_code == 202, response.text
        return True


def _window(base_url: str) -> tuple[list[str], list[float | None]]:
    response = requests.get(f"{base_url}/v1/models/diamonds/window?columns=request_id,price", timeout=30)
    assert response.status_code == 200, response.text
    columns = response.json()["columns"]
    return columns["request_id"], columns["price"]


def _start(config: Path, tmp: Path, cycle: int) -> RunningProcess:
    return start_monitor(config, free_port(), tmp / f"monitor-{cycle}.log", timeout=90)


@pytest.mark.parametrize("fsync", ["interval", "batch"])
def test_window_after_sigkill_holds_exactly_the_acknowledged_rows(tmp_path: Path, fsync: str) -> None:
    config = write_config(
        tmp_path / "monitor.yaml",
        [diamonds_model(window={"max_rows": 100_000})],
        executor="thread",
    )
    text = (
        config.read_text()
        + f"storage:\n  data_dir: {tmp_path / 'data'}\n  fsync: {fsync}\n  fsync_interval: 50ms\n"
    )
    config.write_text(text)
    chooser = random.Random(20261125)
    acked: set[str] = set()
    labels: dict[str, float] = {}
    process = _start(config, tmp_path, 0)
    for cycle in range(3):
        sender = Sender(process.base_url, f"c{cycle}")
        thread = threading.Thread(target=sender.run, daemon=True)
        thread.start()
        target = chooser.randint(20, 150)
        poll_until(
            lambda s=sender, t=target: s.requests_acked >= t, timeout=60, message=f"{target} acked batches"
        )
        assert process.stop(signal.SIGKILL) == -signal.SIGKILL
        thread.join(timeout=30)
        assert not thread.is_alive()
        acked |= sender.acked_rows
        labels.update(sender.acked_labels)
        process = _start(config, tmp_path, cycle + 1)
        ids, prices = _window(process.base_url)
        recovered = set(ids)
        assert len(ids) == len(recovered), "a row was recovered twice"
        assert acked <= recovered, f"{len(acked - recovered)} acknowledged rows lost in cycle {cycle}"
        assert recovered - acked <= sender.in_flight, "rows that were never sent appeared"
        acked |= recovered & sender.in_flight  # a batch that was written but not answered stays in
        by_id = dict(zip(ids, prices, strict=True))
        assert {k: by_id[k] for k in labels} == labels, "an acknowledged label was lost"
    assert process.stop() == 0
