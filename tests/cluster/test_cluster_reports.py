"""Stored reports in cluster mode, on the real 3-node cluster: the member that calculates stores the
report in the cluster's files bucket, every member lists and serves it, retention removes it for
every member, and a member that joins later finds what was stored before it."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
import requests
import yaml
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import ClusterConfig, load_config
from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster
from monitor_service.journal.jetstream_objects import SharedFiles, report_object
from tests.cluster.conftest import run
from tests.cluster.monitors import MODEL, cluster_section, model_section, traffic, write_monitor_config
from tests.exporters.conftest import start_evidently_ui
from tests.support.nats import CLIENT_USER, NatsCluster

pytestmark = pytest.mark.integration
_T = TypeVar("_T")


class Members:
    """Monitors of one cluster (same stream prefix), started in this process on demand."""

    def __init__(self, cluster: NatsCluster, directory: Path, stack: ExitStack, reports: dict[str, Any]):
        self.cluster = cluster
        self.directory = directory
        self.stack = stack
        self.reports = reports
        self.exporters: dict[str, Any] = {}
        self.section = cluster_section(cluster)
        self.started: list[TestClient] = []

    def start(self) -> TestClient:
        number = len(self.started)
        path = write_monitor_config(
            self.directory / f"member-{number}.yaml",
            [model_section()],
            {**self.section, "name": f"m{number}"},
        )
        raw = yaml.safe_load(path.read_text())
        raw["reports"] = self.reports
        if self.exporters:
            raw["exporters"] = self.exporters
        path.write_text(yaml.safe_dump(raw))
        config = load_config(path, environ={"DRIFT_MONITOR_NATS_PASSWORD": self.cluster.password})
        client = self.stack.enter_context(TestClient(create_app(config, start_scheduler=False)))
        self.started.append(client)
        return client

    @property
    def bucket(self) -> str:
        return f"{self.section['stream_prefix']}_FILES"


@pytest.fixture
def members(cluster: NatsCluster, tmp_path: Path) -> Iterator[Members]:
    with ExitStack() as stack:
        yield Members(cluster, tmp_path, stack, {"every": 1, "keep": 2})


def until(read: Callable[[], _T], done: Callable[[_T], bool], seconds: float = 15.0) -> _T:
    """`read()` again until `done` holds of its value or the deadline passes; the last value."""
    deadline = time.monotonic() + seconds
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def listed(client: TestClient) -> list[str]:
    response = client.get(f"/v1/models/{MODEL}/reports")
    assert response.status_code == 200, response.text
    return [report["id"] for report in response.json()["reports"]]


def calculate(client: TestClient) -> dict[str, Any]:
    response = client.post(f"/v1/models/{MODEL}/calculate")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def last_report_time(client: TestClient) -> float | None:
    found = re.search(
        rf'^drift_monitor_last_report_timestamp_seconds{{model="{MODEL}"}} (\S+)$',
        client.get("/metrics").text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else None


def bucket_objects(cluster: NatsCluster, bucket: str) -> dict[str, bool]:
    """Every meta message of the files bucket, as stored: object name -> deleted."""

    async def read() -> dict[str, bool]:
        client = await nats.connect(
            servers=cluster.urls, user=CLIENT_USER, password=cluster.password, connect_timeout=5
        )
        try:
            store = await client.jetstream(timeout=10).object_store(bucket)
            try:
                infos = await store.list()
            except nats.js.errors.NotFoundError:
                return {}
            return {info.name: bool(info.deleted) for info in infos}
        finally:
            await client.close()

    return asyncio.run(read())


def test_any_member_lists_and_serves_the_report_another_member_stored(
    members: Members, cluster: NatsCluster
) -> None:
    first, second = members.start(), members.start()
    for batch in traffic(8):
        response = first.post(batch.path, content=batch.body, headers=batch.headers)
        assert response.status_code == 202, response.text
    assert listed(first) == listed(second) == []
    assert second.get(f"/v1/models/{MODEL}/report").status_code == 404
    result = calculate(first)

    ids = until(lambda: listed(second), lambda ids: len(ids) == 1)
    assert ids == listed(first) and len(ids) == 1
    report_id = ids[0]
    [entry] = second.get(f"/v1/models/{MODEL}/reports").json()["reports"]
    assert entry["current_rows"] == result["current_rows"]
    assert entry["dataset_drift"] == result["dataset_drift"]
    # the page and the snapshot, read from the bucket by the member that did not calculate
    page = second.get(f"/v1/models/{MODEL}/report")
    assert page.status_code == 200, page.text
    assert page.headers["X-Report-Id"] == report_id and "<html" in page.text.lower()
    snapshot = second.get(f"/v1/models/{MODEL}/report", params={"id": report_id, "format": "json"})
    assert snapshot.status_code == 200 and snapshot.json()["metric_results"]
    assert snapshot.content == first.get(f"/v1/models/{MODEL}/report", params={"format": "json"}).content
    # the alert link: the same newest report time on every member, and `?at=` finds it everywhere
    at = until(lambda: last_report_time(second), lambda value: value is not None)
    assert at is not None and at == last_report_time(first) == entry["time"]
    for member in (first, second):
        found = member.get(f"/v1/models/{MODEL}/report", params={"at": f"{at:.3f}"})
        assert (found.status_code, found.headers.get("X-Report-Id")) == (200, report_id)
    assert bucket_objects(cluster, members.bucket) == {
        report_object(MODEL, report_id + ".json"): False,
        report_object(MODEL, report_id + ".meta.json"): False,
    }


def test_retention_removes_reports_for_every_member_and_a_new_member_finds_the_rest(
    members: Members, cluster: NatsCluster
) -> None:
    first, second = members.start(), members.start()
    for batch in traffic(8):
        assert first.post(batch.path, content=batch.body, headers=batch.headers).status_code == 202
    stored: list[str] = []
    for member in (first, second, first):  # keep: 2, whoever calculates applies it
        calculate(member)
        newest = until(
            lambda member=member: listed(member), lambda ids: len(ids) > 0 and ids[0] not in stored
        )
        stored.append(newest[0])
    kept = stored[-1:-3:-1]  # the two newest, newest first
    for member in (first, second):
        assert until(lambda member=member: listed(member), lambda ids: ids == kept) == kept
    gone = second.get(f"/v1/models/{MODEL}/report", params={"id": stored[0]})
    assert gone.status_code == 404
    # removed objects leave no delete marker behind: the bucket holds the kept reports only
    objects = bucket_objects(cluster, members.bucket)
    assert objects == {
        report_object(MODEL, f"{i}{suffix}"): False for i in kept for suffix in (".json", ".meta.json")
    }
    # a member started now loads the listing from the bucket before it is ready
    third = members.start()
    assert listed(third) == kept
    assert third.get(f"/v1/models/{MODEL}/report", params={"id": kept[1]}).status_code == 200


def test_each_member_exports_what_it_calculates_into_one_remote_evidently_ui(
    members: Members, tmp_path: Path
) -> None:
    """Exporters run where the calculation runs: two members, one calculation each, one project
    with both runs in a real Evidently UI."""
    ui = start_evidently_ui(tmp_path / "workspace", tmp_path / "evidently-ui.log")
    members.stack.callback(ui.stop)
    members.exporters = {"evidently_ui": {"url": ui.base_url}}
    first, second = members.start(), members.start()
    for batch in traffic(8):
        assert first.post(batch.path, content=batch.body, headers=batch.headers).status_code == 202
    calculate(first)
    until(lambda: listed(second), lambda ids: len(ids) == 1)
    calculate(second)

    def runs() -> list[int]:
        projects = requests.get(ui.base_url + "/api/projects", timeout=10).json()
        found = [p for p in projects if p["name"] == MODEL]
        return [
            len(requests.get(f"{ui.base_url}/api/projects/{p['id']}/snapshots", timeout=10).json())
            for p in found
        ]

    assert until(runs, lambda counts: counts == [2], seconds=60) == [2]
    for member in (first, second):
        assert re.search(
            r'^drift_monitor_exports_total{exporter="evidently_ui"} 1.0$',
            member.get("/metrics").text,
            re.MULTILINE,
        )


def test_the_files_watch_hears_puts_and_deletes_and_keeps_up_when_its_node_dies(
    cluster: NatsCluster, config: ClusterConfig
) -> None:
    """What every member's report listing rests on: the watch reports objects present at its start,
    then each put and delete; SIGKILL the node its ordered consumer runs on and later changes still
    arrive, through a new watch."""

    async def scenario() -> tuple[dict[str, str], list[str], int]:
        connections = [
            await JetStreamCluster.connect(config.model_copy(update={"servers": [url]}))
            for url in cluster.urls[:2]
        ]
        try:
            writer, reader = [await SharedFiles.open(c) for c in connections]
            await writer.put("report/m/a.meta.json", b"{}", description="entry a")
            heard: dict[str, str] = {}

            def listen(name: str, info: Any) -> None:
                heard[name] = "removed" if info is None else f"put {info.description or ''}".strip()

            watch = await reader.watch(listen, check_every=0.5)
            try:
                assert heard == {"report/m/a.meta.json": "put entry a"}  # loaded before watch() returned
                await writer.put("report/m/b.json", b"x" * 300_000)
                await writer.delete("report/m/a.meta.json")
                [watch_node] = cluster.consumer_leaders(writer.stream).values()
                await asyncio.to_thread(watch_node.kill)
                deadline = asyncio.get_running_loop().time() + 40
                while asyncio.get_running_loop().time() < deadline and "report/m/c.json" not in heard:
                    try:
                        await writer.put("report/m/c.json", b"after")
                    except ClusterUnavailable:  # the election is under way
                        pass
                    await asyncio.sleep(0.2)
                return heard, sorted(watch.names()), watch.rewatches
            finally:
                await watch.stop()
        finally:
            for connection in connections:
                await connection.close()

    heard, names, rewatches = run(scenario())
    assert heard == {"report/m/a.meta.json": "removed", "report/m/b.json": "put", "report/m/c.json": "put"}
    assert names == ["report/m/b.json", "report/m/c.json"]
    assert rewatches >= 1
