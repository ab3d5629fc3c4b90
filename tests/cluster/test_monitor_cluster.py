"""Monitors in cluster mode on a real 3-node cluster, in this process: batches go through JetStream,
windows come back from the stream, and the numbers equal a single node's exactly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import MonitorConfig, load_config
from tests.cluster.monitors import (
    MODEL,
    Batch,
    cluster_section,
    comparable,
    model_section,
    traffic,
    write_monitor_config,
)
from tests.support.nats import NatsCluster

pytestmark = pytest.mark.integration


def load(path: Path, cluster: NatsCluster | None) -> MonitorConfig:
    environ = {"DRIFT_MONITOR_NATS_PASSWORD": cluster.password} if cluster else {}
    return load_config(path, environ=environ)


@pytest.fixture
def single(tmp_path: Path) -> Iterator[TestClient]:
    config = load(write_monitor_config(tmp_path / "single.yaml", [model_section()]), None)
    with TestClient(create_app(config, start_scheduler=False)) as client:
        yield client


def cluster_monitors(cluster: NatsCluster, directory: Path, count: int) -> Iterator[list[TestClient]]:
    section = cluster_section(cluster)
    with ExitStack() as stack:
        clients = []
        for number in range(count):
            path = write_monitor_config(
                directory / f"member-{number}.yaml", [model_section()], {**section, "name": f"m{number}"}
            )
            app = create_app(load(path, cluster), start_scheduler=False)
            clients.append(stack.enter_context(TestClient(app)))
        yield clients


@pytest.fixture
def two_members(cluster: NatsCluster, tmp_path: Path) -> Iterator[list[TestClient]]:
    yield from cluster_monitors(cluster, tmp_path, 2)


def send(client: TestClient, batch: Batch) -> dict[str, Any]:
    response = client.post(batch.path, content=batch.body, headers=batch.headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def window(client: TestClient) -> dict[str, Any]:
    response = client.get(f"/v1/models/{MODEL}/window")
    assert response.status_code == 200, response.text
    exported: dict[str, Any] = response.json()
    return exported


def calculate(client: TestClient) -> dict[str, Any]:
    response = client.post(f"/v1/models/{MODEL}/calculate")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def stream_messages(cluster: NatsCluster, client: TestClient) -> int:
    """Messages of the model's stream, as the stream leader's own copy counts them."""
    prefix = client.app.state.service.config.cluster.stream_prefix  # type: ignore[attr-defined]
    stream = f"{prefix}_W_{MODEL}"
    state = cluster.stream_leader(stream).stream_state(stream)
    assert state is not None
    return int(state["messages"])


def test_members_in_turn_hold_and_calculate_what_one_node_does(
    single: TestClient, two_members: list[TestClient], cluster: NatsCluster
) -> None:
    """The same batches to one node and, alternately, to two members (one batch retried with its
    id through the other member): the same window, row for row, label for label, and the same
    result, score for score; the 202 of a member says nothing of a window it did not fill."""
    batches = traffic()
    for number, batch in enumerate(batches):
        send(single, batch)
        answer = send(two_members[number % 2], batch)
        if batch.kind == "rows":
            assert answer["window_rows"] is None
        else:
            assert (answer["matched"], answer["pending"]) == (None, None)
        if number == 5:  # a retry through the other member, same batch id: stored once
            send(two_members[(number + 1) % 2], batch)
    assert stream_messages(cluster, two_members[0]) == len(batches)
    expected = window(single)
    assert expected["rows"] == 400  # the window turned over
    for member in two_members:
        assert window(member) == expected
    local = calculate(single)
    first = calculate(two_members[0])
    second = calculate(two_members[1])
    assert comparable(first) == comparable(local)
    assert comparable(second) == comparable(local)
    assert local["labelled_rows"] > 0 and local["columns"]


def test_every_member_serves_the_result_of_any(two_members: list[TestClient]) -> None:
    """A calculation on one member is what the other serves on /v1/models and /metrics, with the
    cluster's counters (calculations, labels)."""
    for batch in traffic(8):
        send(two_members[0], batch)
    result = calculate(two_members[0])
    other = two_members[1]
    deadline = time.monotonic() + 10
    while True:
        served = other.get(f"/v1/models/{MODEL}/results").json()
        if served["result"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert served["result"] == result
    assert (served["calculations"], served["window_rows"]) == (1, result["current_rows"])
    metrics = other.get("/metrics").text
    score = next(c for c in result["columns"] if c["column"] == "carat")["score"]
    assert f'drift_monitor_column_drift_score{{column="carat",model="{MODEL}",' in metrics
    assert repr(score) in metrics or f"{score}" in metrics
    assert f'drift_monitor_calculations_total{{model="{MODEL}"}} 1.0' in metrics
    received = sum(1 for batch in traffic(8) if batch.kind == "labels")
    assert received > 0
    assert f'drift_monitor_labels_received_total{{model="{MODEL}"}}' in metrics
    assert 'drift_monitor_labels_received_total{model="diamonds"} 0.0' not in metrics
