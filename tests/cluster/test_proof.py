"""The proof of cluster mode, with real programs on loopback: a 3-node NATS cluster (authentication on),
three `python -m monitor_service serve` members, one single-node monitor, Debian's Prometheus.

The same batches go one after another to the single node and, round robin, to the members. Mid-stream
the leader of the model's stream is SIGKILLed while a batch is in flight, and a member is SIGKILLed
while it holds a calculation task (frozen first with SIGSTOP, so the test knows the task was its own
and unfinished). The sender retries every batch with its id until a member acknowledges it. Then:
the stream holds exactly the acknowledged batches, each once, in order; the lost task was delivered
again to another member and completed; the killed NATS node and the killed member, restarted, catch
up by themselves; every per-column score, p-value, flag and data-quality value equals the single
node's; Prometheus scraping the members sees the single node's values and the rules fire each alert
once per cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from monitor_service.cluster.entry import ModelEntry
from monitor_service.config import ClusterConfig
from monitor_service.journal.jetstream import JetStreamCluster, StreamRecord
from monitor_service.journal.jetstream_state import StateStore, result_key
from tests.cluster.conftest import delete_every_stream
from tests.cluster.monitors import (
    MODEL,
    RUN_FIELDS,
    Batch,
    cluster_section,
    comparable,
    model_section,
    same_arrivals,
    write_monitor_config,
)
from tests.conftest import rows_of
from tests.support.nats import CLIENT_USER, NatsCluster, NatsNode
from tests.support.processes import (
    LOOPBACK,
    REPO_ROOT,
    RULE_FILES,
    RunningProcess,
    free_port,
    poll_until,
    start_monitor,
    start_process,
    start_prometheus,
    wait_for_http,
)

pytestmark = pytest.mark.integration

MEMBERS = 3
EVERY = 6.0  # the members' schedule: a lost task is redelivered (ack_wait 2 s) before the next slot
# The member killed must have taken its task with this much of the slot left: ack_wait, plus the
# freeze and the look at the entry (a busy machine), so the redelivery comes within the slot.
REDELIVERY_ROOM = 3.5
CLUSTER_LABEL = "proof"
ROW_BATCHES = 36
KILL_LEADER_AT = 10  # the batch in flight when the stream's leader is killed
KILL_MEMBER_AT = 22  # batches acknowledged before a member holding a task is killed
DRIFT_ALERTS = (
    "DriftMonitorDatasetDrift",
    "DriftMonitorFeatureDrift",
    "DriftMonitorTargetDrift",
    "DriftMonitorPredictionDrift",
    "DriftMonitorHighMissingValues",
)


def proof_traffic() -> list[Batch]:
    """36 row batches (1 to 97 rows; the second half from the drifted split, so columns drift) and
    a labels batch after every fourth, some for rows not sent yet."""
    out: list[Batch] = []
    start = 0
    for number in range(ROW_BATCHES):
        size = 1 + (number * 37) % 97
        rows = rows_of("production" if number < ROW_BATCHES // 2 else "drifted", size, start=start % 4500)
        for offset, row in enumerate(rows):
            row["request_id"] = f"p-{start + offset}"
            row.pop("price")
            if (start + offset) % 13 == 0:
                row["depth"] = None
        out.append(Batch("rows", json.dumps({"rows": rows}).encode(), f"rows-{number}"))
        if number % 4 == 3:
            ids = [f"p-{i}" for i in range(max(0, start - 40), start + size + 3, 3)]
            labels = [{"id": row_id, "target": 900.0 + 7 * i} for i, row_id in enumerate(ids)]
            out.append(Batch("labels", json.dumps({"labels": labels}).encode(), f"labels-{number}"))
        start += size
    return out


@dataclass
class Sender:
    """Sends batches one after another; each is retried, with its id, on the next member until one
    acknowledges it (202)."""

    members: list[RunningProcess]
    acknowledged: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    turn: int = 0

    def send(self, batch: Batch, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            member = self.members[self.turn % len(self.members)]
            self.turn += 1
            if not member.is_running():
                continue
            self.attempts[batch.key] = self.attempts.get(batch.key, 0) + 1
            try:
                answer = requests.post(
                    member.base_url + batch.path, data=batch.body, headers=batch.headers, timeout=15
                )
            except requests.RequestException:
                continue
            if answer.status_code == 202:
                self.acknowledged.append(batch.key)
                return
            assert answer.status_code in (429, 500, 502, 503), answer.text
            time.sleep(0.05)
        raise AssertionError(f"batch {batch.key} not acknowledged within {timeout} s")


@dataclass
class Proof:
    """What the scenario did and saw, for the tests below."""

    sent: list[Batch]
    sender: Sender
    single_result: dict[str, Any]
    stream_records: list[StreamRecord]
    killed_node: NatsNode
    node_caught_up: bool
    killed_member: str
    lost_task: str  # "model:tick"
    member_logs: dict[str, str]
    restarted_result: dict[str, Any]
    served_results: dict[str, dict[str, Any]]
    prometheus: dict[str, Any]
    member_urls: list[str]  # every member running now (the restarted one included)


# The drift alerts read the confirmed state. One calculation confirms and one clears it here, so the
# single node's one calculation and the cluster's last scheduled one (of the same window) give the
# same confirmed state, and the alerts on it fire within the test.
AT_ONCE = {"confirm": 1, "clear": 1}


def member_config(directory: Path, cluster: NatsCluster, prefix: str, name: str) -> Path:
    model = model_section(drift=AT_ONCE)
    model["window"] = {"max_rows": 5000}  # the whole traffic: nothing trimmed, the stream keeps all
    model["schedule"] = {"every": f"{EVERY:g}s", "min_rows": 10}
    section = cluster_section(cluster, prefix, name=name, task_ack_wait=2.0)
    return write_monitor_config(directory / f"{name}.yaml", [model], section)


def start_members(
    configs: dict[str, Path], directory: Path, env: dict[str, str]
) -> dict[str, RunningProcess]:
    """Start every member at once (imports overlap), then wait for each to be ready."""
    started: dict[str, RunningProcess] = {}
    for name, config in configs.items():
        port = free_port()
        process = start_process(
            name,
            [
                sys.executable,
                "-m",
                "monitor_service",
                "serve",
                "--config",
                str(config),
                "--host",
                LOOPBACK,
                "--port",
                str(port),
            ],
            directory / f"{name}-{int(time.time() * 1000)}.log",
            env=env,
            cwd=REPO_ROOT,
        )
        process.base_url = f"http://{LOOPBACK}:{port}"
        started[name] = process
    for process in started.values():
        wait_for_http(process.base_url + "/readyz", process=process, timeout=120)
    return started


_TASK_LINE = re.compile(r"task (\S+:\d+) \(delivery (\d+)\) (\w+)")


def task_events(log: str) -> list[tuple[str, int, str]]:
    return [(m[1], int(m[2]), m[3]) for m in _TASK_LINE.finditer(log)]


async def entry_of(config: ClusterConfig) -> ModelEntry | None:
    cluster = await JetStreamCluster.connect(config)
    try:
        found = await (await StateStore.open(cluster)).get(result_key(MODEL))
        return ModelEntry.decode(found.value) if found else None
    finally:
        await cluster.close()


def kill_a_member_holding_a_task(
    members: dict[str, RunningProcess], config: ClusterConfig, timeout: float = 60.0
) -> tuple[str, str]:
    """Freeze the first member seen starting a task; if it had neither finished that task nor
    written its slot, SIGKILL it (the task is then lost with it), else let it go on and wait for
    the next one."""
    deadline = time.monotonic() + timeout
    seen = {name: len(task_events(process.log())) for name, process in members.items()}
    while time.monotonic() < deadline:
        for name, process in members.items():
            events = task_events(process.log())
            fresh = events[seen[name] :]
            seen[name] = len(events)
            started = [slot for slot, delivery, what in fresh if what == "started" and delivery == 1]
            if not started:
                continue
            slot = started[-1]
            if time.time() > int(slot.split(":")[1]) * EVERY + EVERY - REDELIVERY_ROOM:
                continue  # started late in its slot: redelivered, it would only be skipped as late
            process.popen.send_signal(signal.SIGSTOP)
            time.sleep(0.2)  # let the log catch up with what it did before the stop
            finished = [e for e in task_events(process.log()) if e[0] == slot and e[2] != "started"]
            entry = asyncio.run(entry_of(config))
            due = int(slot.split(":")[1]) * EVERY
            written = entry is not None and entry.by == name and entry.due == due
            if finished or written:
                process.popen.send_signal(signal.SIGCONT)
                seen[name] = len(task_events(process.log()))
                continue
            assert process.stop(signal.SIGKILL) == -signal.SIGKILL
            return name, slot
        time.sleep(0.01)
    raise AssertionError("no member was caught holding a task")


async def read_stream(config: ClusterConfig) -> list[StreamRecord]:
    journal = await JetStreamCluster.connect(config)
    try:
        await journal.ensure_model(MODEL, max_rows=5000, max_age=None)
        return await journal.read_window(MODEL, max_rows=10_000_000, labels_lookback=1e9)
    finally:
        await journal.close()


def same_copy(node: NatsNode, other: NatsNode, stream: str) -> bool:
    mine, theirs = node.stream_state(stream), other.stream_state(stream)
    keys = ("messages", "bytes", "first_seq", "last_seq")
    return mine is not None and theirs is not None and all(mine.get(k) == theirs.get(k) for k in keys)


def results_of(process: RunningProcess) -> dict[str, Any]:
    answer = requests.get(f"{process.base_url}/v1/models/{MODEL}/results", timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def calculate_on(process: RunningProcess) -> dict[str, Any]:
    answer = requests.post(f"{process.base_url}/v1/models/{MODEL}/calculate", timeout=60)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def differences(got: dict[str, Any], expected: dict[str, Any]) -> str:
    """What differs between two results, field by field (for failure messages)."""
    lines = []
    for key in sorted(set(got) | set(expected)):
        if key in RUN_FIELDS or got.get(key) == expected.get(key):
            continue
        mine, theirs = got.get(key), expected.get(key)
        if isinstance(mine, list) and isinstance(theirs, list):
            pairs = [(a, b) for a, b in zip(mine, theirs, strict=False) if a != b]
            lines.append(f"{key}: {len(mine)} vs {len(theirs)} items; first differing: {pairs[:2]}")
        else:
            lines.append(f"{key}: {mine!r} vs {theirs!r}")
    return "\n".join(lines)


def quick_rules(directory: Path) -> list[Path]:
    """The repository's rule files with every `for:` at 0 s, so alerts fire within the test."""
    out = []
    for path in RULE_FILES:
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
                    rule.pop("keep_firing_for", None)
        target = directory / path.name
        target.write_text(yaml.safe_dump(rules, sort_keys=False))
        out.append(target)
    return out


def prometheus_view(directory: Path, members: list[RunningProcess], single: RunningProcess) -> dict[str, Any]:
    """Prometheus scraping the members (with the cluster label) and the single node: the series
    and the firing alerts it sees."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in quick_rules(directory)],
        "scrape_configs": [
            {
                "job_name": "drift-monitor",
                "static_configs": [
                    {
                        "targets": [m.base_url.removeprefix("http://") for m in members],
                        "labels": {"cluster": CLUSTER_LABEL},
                    },
                    {"targets": [single.base_url.removeprefix("http://")]},
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = start_prometheus(directory / "prometheus.yml", directory / "tsdb", port)
    try:
        api = f"http://{LOOPBACK}:{port}/api/v1"

        def query(expr: str) -> list[dict[str, Any]]:
            answer = requests.get(f"{api}/query", params={"query": expr}, timeout=10).json()
            assert answer["status"] == "success", answer
            found: list[dict[str, Any]] = answer["data"]["result"]
            return found

        scores = 'drift_monitor_column_drift_score{model="diamonds"}'

        def scores_of_every_instance() -> list[dict[tuple[str, ...], float]]:
            out: dict[str, dict[tuple[str, ...], float]] = {}
            for sample in query(scores):
                labels = sample["metric"]
                key = (labels["column"], labels["role"], labels["stattest"])
                out.setdefault(labels["instance"], {})[key] = float(sample["value"][1])
            return list(out.values())

        # Every member and the single node, on the result of the whole traffic (a member's scrape
        # may still show the result before it; the test then compares every family at once).
        poll_until(
            lambda: (
                len(found := scores_of_every_instance()) == len(members) + 1
                and all(v == found[0] for v in found)
            ),
            timeout=60,
            message="the same scores from every member and the single node",
        )
        firing = 'ALERTS{alertstate="firing"}'
        poll_until(
            lambda: (
                any(a["metric"].get("cluster") == CLUSTER_LABEL for a in query(firing))
                and any("cluster" not in a["metric"] for a in query(firing))
            ),
            timeout=60,
            message="alerts of the cluster and of the single node",
        )
        # Three more evaluations of every rule group: duplicates, if any, would show by now.
        after = time.time() + 3

        def evaluated_since() -> bool:
            groups = requests.get(f"{api}/rules", timeout=10).json()["data"]["groups"]
            return all(datetime.fromisoformat(g["lastEvaluation"]).timestamp() >= after for g in groups)

        poll_until(evaluated_since, timeout=30, message="three more rule evaluations")
        return {
            "scores": query(scores),
            "quality": query('drift_monitor_column_missing_values_ratio{model="diamonds"}'),
            "flags": query('drift_monitor_column_drift_detected{model="diamonds"}'),
            "confirmed": query('drift_monitor_column_drift_confirmed{model="diamonds"}'),
            "alerts": query(firing),
            # with their annotations, as Alertmanager would get them
            "annotated": requests.get(f"{api}/alerts", timeout=10).json()["data"]["alerts"],
            "last_report": query('drift_monitor_last_report_timestamp_seconds{model="diamonds"}'),
        }
    finally:
        prometheus.stop()


@pytest.fixture(scope="module")
def proof(nats_cluster: NatsCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proof]:
    cluster = nats_cluster
    cluster.start()
    directory = tmp_path_factory.mktemp("proof")
    prefix = f"P{int(time.time())}"
    # One hash seed for every monitor: Evidently orders categories by iterating over a set of strings,
    # whose order follows the (per-process random) string hashes, and sums in that order: without a
    # shared seed two processes agree to the last bit or two only (docs/cluster.md).
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONHASHSEED": str(secrets.randbelow(2**32)),
        "DRIFT_MONITOR_NATS_PASSWORD": cluster.password,
    }
    whole = model_section(window={"max_rows": 5000}, drift=AT_ONCE)
    single_config = write_monitor_config(directory / "single.yaml", [whole])
    configs = {f"m{n}": member_config(directory, cluster, prefix, f"m{n}") for n in range(MEMBERS)}
    config = ClusterConfig.model_validate(
        {**cluster_section(cluster, prefix), "user": CLIENT_USER, "password": cluster.password}
    )
    processes: list[RunningProcess] = []
    try:
        single = start_monitor(single_config, free_port(), directory / "single.log", env=env)
        processes.append(single)
        members = start_members(configs, directory, env)
        processes.extend(members.values())
        sender = Sender(list(members.values()))
        batches = proof_traffic()
        stream = f"{prefix}_W_{MODEL}"
        killed_node: NatsNode | None = None
        killed_member = lost_task = ""
        for number, batch in enumerate(batches):
            Sender([single]).send(batch)
            if number == KILL_LEADER_AT:  # kill the leader while this batch is being published
                leader = cluster.stream_leader(stream)
                killer = threading.Timer(0.02, leader.kill)
                killer.start()
                sender.send(batch)
                killer.join()
                killed_node = leader
                continue
            if number == KILL_MEMBER_AT:
                running = [node.url for node in cluster.nodes if node.is_running()]
                reachable = config.model_copy(update={"servers": running})
                killed_member, lost_task = kill_a_member_holding_a_task(members, reachable)
            sender.send(batch)
        assert killed_node is not None
        # the killed NATS node comes back on its own store and catches up from its peers
        killed_node.start()
        cluster.wait_healthy(timeout=60)
        leader_now = cluster.stream_leader(stream)
        node_caught_up = bool(
            poll_until(
                lambda: same_copy(killed_node, leader_now, stream),
                timeout=30,
                message="the restarted node's copy to match the leader's",
            )
        )
        records = asyncio.run(read_stream(config))
        single_result = calculate_on(single)
        survivors = [p for name, p in members.items() if name != killed_member]
        # the scheduled calculations of the survivors reach the whole traffic, and every survivor's
        # mirror of the shared entries shows it (a mirror may be a moment behind on a busy machine)
        poll_until(
            lambda: all(
                comparable(results_of(p)["result"] or {}) == comparable(single_result) for p in survivors
            ),
            timeout=60,
            message="a scheduled result of the whole traffic",
            on_timeout=lambda: (
                differences(results_of(survivors[0])["result"] or {}, single_result)
                + f"\nstream: {[(r.seq, r.msg_id, r.rows) for r in records]}"
            ),
        )
        served = {p.name: results_of(p)["result"] for p in survivors}
        # the killed member, restarted with nothing but its config, catches up from the stream
        restarted = start_members({killed_member: configs[killed_member]}, directory, env)[killed_member]
        processes.append(restarted)
        restarted_result = calculate_on(restarted)
        members[killed_member] = restarted
        view = prometheus_view(directory, list(members.values()), single)
        logs = {p.name: p.log() for p in survivors}
        yield Proof(
            sent=batches,
            sender=sender,
            single_result=single_result,
            stream_records=records,
            killed_node=killed_node,
            node_caught_up=node_caught_up,
            killed_member=killed_member,
            lost_task=lost_task,
            member_logs=logs,
            restarted_result=restarted_result,
            served_results=served,
            prometheus=view,
            member_urls=[p.base_url for p in members.values()],
        )
    finally:
        for process in processes:
            if process.is_running():
                process.popen.send_signal(signal.SIGCONT)
                process.stop()
        cluster.start(timeout=90)
        asyncio.run(delete_every_stream(cluster))


def test_the_stream_holds_each_acknowledged_batch_once_in_order(proof: Proof) -> None:
    keys = [batch.key for batch in proof.sent]
    assert proof.sender.acknowledged == keys
    assert [record.msg_id for record in proof.stream_records] == keys
    assert [record.seq for record in proof.stream_records] == list(range(1, len(keys) + 1))
    # the batch in flight at the leader's death, and those after it, were retried
    assert sum(proof.sender.attempts.values()) > len(keys)


def test_every_value_equals_the_single_nodes(proof: Proof) -> None:
    expected = comparable(proof.single_result)
    assert expected["columns"] and expected["quality"] and expected["labelled_rows"] > 0
    assert any(column["detected"] for column in expected["columns"])  # the drifted half shows
    for name, result in proof.served_results.items():
        assert comparable(result) == expected, name
    assert comparable(proof.restarted_result) == expected
    # every member's window carries the arrival times the accepting members stamped
    same_arrivals(*proof.served_results.values(), proof.restarted_result)


def test_the_lost_task_was_delivered_again_and_completed(proof: Proof) -> None:
    """The member died before writing its slot: another member got the task again and calculated
    (superseded: it calculated, but the next slot's result, calculated meanwhile, was newer)."""
    events = [event for log in proof.member_logs.values() for event in task_events(log)]
    again = [(delivery, what) for slot, delivery, what in events if slot == proof.lost_task and delivery > 1]
    assert again[:1] == [(2, "started")], (proof.lost_task, events[-20:])
    # a delivery the cluster failed midway is given back and delivered again (3, ...)
    done = [what for _, what in again if what not in ("started", "given_back")]
    assert done[:1] in (["calculated"], ["superseded"]), again


def test_a_restarted_nats_node_catches_up(proof: Proof) -> None:
    assert proof.node_caught_up
    assert proof.killed_node.is_running() and proof.killed_node.starts >= 2


def test_prometheus_sees_the_single_nodes_values_from_every_member(proof: Proof) -> None:
    def by_instance(series: list[dict[str, Any]], *keys: str) -> dict[str, dict[tuple[str, ...], float]]:
        out: dict[str, dict[tuple[str, ...], float]] = {}
        for sample in series:
            labels = sample["metric"]
            key = tuple(labels.get(k, "") for k in keys)
            out.setdefault(labels["instance"], {})[key] = float(sample["value"][1])
        return out

    for family, keys in (
        ("scores", ("column", "role", "stattest")),
        ("quality", ("column", "dataset")),
        ("flags", ("column", "role")),
        ("confirmed", ("column", "role")),
    ):
        seen = by_instance(proof.prometheus[family], *keys)
        assert len(seen) == MEMBERS + 1
        values = list(seen.values())
        assert all(v == values[0] for v in values), family  # members and single node alike
        assert values[0]


def test_the_rules_fire_each_alert_once_per_cluster(proof: Proof) -> None:
    alerts = [a["metric"] for a in proof.prometheus["alerts"]]
    cluster = [a for a in alerts if a.get("cluster") == CLUSTER_LABEL and a["alertname"] in DRIFT_ALERTS]
    single = [a for a in alerts if "cluster" not in a and a["alertname"] in DRIFT_ALERTS]
    assert cluster and all("instance" not in a for a in cluster)

    def identity(alert: dict[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in alert.items() if k not in ("instance", "cluster")))

    assert len({identity(a) for a in cluster}) == len(cluster)  # no duplicates
    assert sorted(map(identity, cluster)) == sorted(map(identity, single))  # the same alerts


def test_the_alerts_link_to_the_report_every_member_serves(proof: Proof) -> None:
    """A cluster's drift alert links to the stored report in force (`?at=` from the members' newest
    report time); every member, the restarted one included, serves that same report from the
    cluster's files bucket."""
    members = [s for s in proof.prometheus["last_report"] if s["metric"].get("cluster") == CLUSTER_LABEL]
    assert len(members) == len(proof.member_urls)
    times = {float(s["value"][1]) for s in members}
    assert len(times) == 1, members  # the same listing on every member
    [newest] = times
    links = {
        alert["annotations"]["report"]
        for alert in proof.prometheus["annotated"]
        if alert["labels"].get("cluster") == CLUSTER_LABEL and alert["labels"]["alertname"] in DRIFT_ALERTS
    }
    assert links == {f"/v1/models/{MODEL}/report?at={newest:.3f}"}, links
    [link] = links
    served = set()
    for url in proof.member_urls:
        page = requests.get(url + link, timeout=60)
        assert page.status_code == 200, (url, page.text[:500])
        assert float(page.headers["X-Report-Time"]) == pytest.approx(newest, abs=1e-3)
        served.add(page.headers["X-Report-Id"])
    assert len(served) == 1, served
