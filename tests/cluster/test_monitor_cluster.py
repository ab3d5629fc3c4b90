"""Monitors in cluster mode on a real 3-node cluster, in this process: batches go through JetStream,
windows come back from the stream, and the numbers equal a single node's exactly."""

from __future__ import annotations

import gzip
import io
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import MonitorConfig, load_config
from monitor_service.journal.jetstream import MSG_ID
from monitor_service.journal.jetstream_tasks import tick_of
from tests.cluster.monitors import (
    MODEL,
    Batch,
    cluster_section,
    comparable,
    model_section,
    same_arrivals,
    traffic,
    write_monitor_config,
)
from tests.conftest import rows_of
from tests.support.nats import NatsCluster
from tests.support.processes import promtool_binary

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
    # both members replayed the accepting members' arrival times: the same bounds, within the run
    first_arrival, last_arrival = same_arrivals(first, second)
    assert local["window_first_arrival"] <= last_arrival and first_arrival <= local["window_last_arrival"]


def test_a_member_refuses_bad_bodies_exactly_as_one_node_does(
    single: TestClient, two_members: list[TestClient], cluster: NatsCluster
) -> None:
    """Cluster ingest validates through the same decoders (bodies.py) in one pass: the same status
    and the same field-level detail for every format, and nothing reaches the stream."""
    good = rows_of("production", 3)
    arrow_sink = io.BytesIO()
    table = pa.Table.from_pylist([{**row, "carat": str(row["carat"])} for row in good])
    with ipc.new_stream(arrow_sink, table.schema) as writer:
        writer.write_table(table)
    json_type = {"Content-Type": "application/json"}
    bad = [
        ("rows", json.dumps({"rows": [{**good[0], "colour": "red"}]}).encode(), json_type),
        ("rows", json.dumps({"columns": {"carat": [1.0, "x"]}}).encode(), json_type),
        ("rows", b'{"carat": 1.0}\n{"carat": [1]}', {"Content-Type": "application/x-ndjson"}),
        ("rows", arrow_sink.getvalue(), {"Content-Type": "application/vnd.apache.arrow.stream"}),
        ("rows", gzip.compress(json.dumps({"rows": good}).encode()), json_type),  # no Content-Encoding
        ("rows", b"not gzip", {**json_type, "Content-Encoding": "gzip"}),
        ("rows", json.dumps({"rows": []}).encode(), json_type),
        ("labels", json.dumps({"labels": [{"id": "a", "target": "x"}]}).encode(), json_type),
        ("labels", arrow_sink.getvalue(), {"Content-Type": "application/vnd.apache.arrow.stream"}),
    ]
    for kind, body, headers in bad:
        path = f"/v1/models/{MODEL}/{kind}"
        expected = single.post(path, content=body, headers=headers)
        assert 400 <= expected.status_code < 500, expected.text
        for member in two_members:
            got = member.post(path, content=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
            assert (got.status_code, got.json()) == (expected.status_code, expected.json())
    assert stream_messages(cluster, two_members[0]) == 0


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
    assert "drift_monitor_cluster_connected 1.0" in metrics
    assert "drift_monitor_log_segment_bytes{" not in metrics  # no local log in cluster mode
    checked = subprocess.run(
        [promtool_binary(), "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def member_of(client: TestClient) -> Any:
    return client.app.state.service.member  # type: ignore[attr-defined]


def wait_for(predicate: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def scheduled_members(cluster: NatsCluster, tmp_path: Path) -> Iterator[list[TestClient]]:
    """Two members with their ticks and task loops running, every 1 s."""
    section = cluster_section(cluster)
    model = model_section()
    model["schedule"] = {"every": "1s", "min_rows": 10}
    with ExitStack() as stack:
        clients = []
        for number in range(2):
            path = write_monitor_config(
                tmp_path / f"m{number}.yaml", [model], {**section, "name": f"m{number}"}
            )
            clients.append(stack.enter_context(TestClient(create_app(load(path, cluster)))))
        yield clients


def test_each_slot_is_calculated_once_by_one_member_and_the_stream_is_trimmed(
    scheduled_members: list[TestClient],
    single: TestClient,
    cluster: NatsCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Both members publish every slot; each slot is calculated by one of them, once; the cluster
    counts no calculation that was not done; trims keep the stream near the window (400 rows) and
    never cut into it: each member's window, read after the other's trims, is still the single
    node's."""
    caplog.set_level(logging.INFO, logger="monitor_service.cluster.member")
    batches = traffic()
    for number, batch in enumerate(batches):
        send(scheduled_members[number % 2], batch)
        send(single, batch)
        time.sleep(0.15)  # slots pass while the batches arrive: trims interleave with them

    def calculated() -> list[str]:
        return [
            r.getMessage().split()[1]  # "model:tick"
            for r in caplog.records
            if r.getMessage().startswith("task ") and r.getMessage().endswith(" calculated")
        ]

    wait_for(lambda: len(calculated()) >= 4, 30, "four slots calculated")
    wait_for(
        lambda: scheduled_members[1].get(f"/v1/models/{MODEL}/results").json()["calculations"] >= 4,
        10,
        "the other member to see them",
    )
    served = scheduled_members[1].get(f"/v1/models/{MODEL}/results").json()
    slots = calculated()
    assert len(slots) == len(set(slots)), slots  # no slot calculated twice
    assert served["calculations"] <= len(slots)
    assert served["errors"] == 0 and served["result"]["current_rows"] == 400
    assert not any(r.getMessage().endswith(" failed") for r in caplog.records)
    # the window needs the newest messages holding 400 rows, plus labels that can join them
    assert stream_messages(cluster, scheduled_members[0]) < len(batches)
    expected = window(single)
    for member in scheduled_members:
        assert window(member) == expected


def test_a_reference_replaced_on_one_member_is_the_reference_of_every_member(
    two_members: list[TestClient],
) -> None:
    """PUT .../reference on one member goes to the cluster's files bucket: the other member's next
    calculation uses it (and says it was persisted)."""
    first, second = two_members
    for batch in traffic(8):
        send(first, batch)
    before = calculate(second)
    reference = pd.DataFrame(rows_of("drifted", 2000, start=1000))
    answer = first.put(
        f"/v1/models/{MODEL}/reference",
        content=reference.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["persisted"] is True
    after = calculate(second)
    assert (before["reference_rows"], after["reference_rows"]) == (10_000, 2000)
    assert after["columns"] != before["columns"]
    assert calculate(first)["columns"] == after["columns"]


def test_a_moving_reference_moves_for_every_member(cluster: NatsCluster, tmp_path: Path) -> None:
    """With moving_reference the window a calculation used becomes the next one's reference, whichever
    member runs the next (legacy mode: tested mode ignores moving_reference)."""
    section = cluster_section(cluster)
    model = model_section(moving_reference=True, drift={"mode": "legacy"})
    with ExitStack() as stack:
        apps = [
            create_app(
                load(write_monitor_config(tmp_path / f"{n}.yaml", [model], {**section, "name": n}), cluster),
                start_scheduler=False,
            )
            for n in ("a", "b")
        ]
        first, second = (stack.enter_context(TestClient(app)) for app in apps)
        for batch in traffic(8):
            send(first, batch)
        moved = calculate(first)
        assert moved["reference_rows"] == 10_000
        following = calculate(second)
        assert following["reference_rows"] == moved["current_rows"]
        assert following["dataset_drift"] is False  # the same window against itself


def test_a_slot_is_calculated_once_however_often_its_tick_comes_and_never_when_over(
    two_members: list[TestClient],
) -> None:
    """The task of the current slot is calculated; the same slot published again under another
    message id (a member paused past the duplicate window) is a duplicate; a slot already over when
    its task is taken is late: neither calculates."""
    first = two_members[0]
    for batch in traffic(8):
        send(first, batch)
    member = member_of(first)
    every = member.models[MODEL].config.schedule.every

    async def publish(tick: int, msg_id: str) -> None:
        queue = member._tasks
        body = json.dumps({"model": MODEL, "every": every, "tick": tick}).encode()
        await queue.cluster.publish_message(
            queue.names.task_subject(MODEL), body, {MSG_ID: msg_id}, stream=queue.names.tasks_stream
        )

    async def take_and_do() -> list[str]:
        return [await member.handle(task) for task in await member._tasks.pull(batch=5, timeout=2.0)]

    now_tick = tick_of(every, time.time())
    outcomes = []
    for tick, msg_id in ((now_tick, "a"), (now_tick, "b"), (now_tick - 3, "c")):
        first.portal.call(publish, tick, msg_id)
        outcomes.extend(first.portal.call(take_and_do))
    assert outcomes == ["calculated", "duplicate", "late"]
    assert calculate(first)  # and a manual calculation still goes through
    served = first.get(f"/v1/models/{MODEL}/results").json()
    assert served["calculations"] == 2
