"""Node failures on a real 3-node cluster: nothing acknowledged is lost, nothing is stored twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from monitor_service.config import ClusterConfig
from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster, PublishAck
from tests.cluster.conftest import make_config, run
from tests.cluster.test_journal import MODEL, rows_body
from tests.support.nats import NatsCluster, NatsNode
from tests.support.processes import poll_until

pytestmark = pytest.mark.integration

SENDERS = 4
BATCHES = 60
BATCH_ROWS = 10
KILL_AFTER = 40  # acknowledged batches before the stream leader is killed


@dataclass
class Outcome:
    acks: dict[str, PublishAck] = field(default_factory=dict)
    unavailable: int = 0  # publishes that gave up (ClusterUnavailable) and were retried by the sender


async def send(journal: JetStreamCluster, sender: int, outcome: Outcome, killed: asyncio.Event) -> None:
    """One sender: batches one after another, each retried with the same id until acknowledged."""
    for number in range(BATCHES):
        batch_id = f"s{sender}-{number:03d}"
        body = rows_body((sender * BATCHES + number) % 2900, BATCH_ROWS, batch_id)
        while True:
            try:
                outcome.acks[batch_id] = await journal.publish(
                    MODEL, "rows", body, msg_id=batch_id, rows=BATCH_ROWS, arrived=time.time()
                )
                break
            except ClusterUnavailable:
                outcome.unavailable += 1
        if not killed.is_set():
            await asyncio.sleep(0.005)  # spread the batches so the kill lands mid-stream


def same_copy(node: NatsNode, other: NatsNode, stream: str) -> bool:
    """Both nodes hold the same messages of `stream` in their own store."""
    mine, theirs = node.stream_state(stream), other.stream_state(stream)
    keys = ("messages", "bytes", "first_seq", "last_seq")
    return mine is not None and theirs is not None and all(mine.get(k) == theirs.get(k) for k in keys)


def test_stream_leader_killed_mid_stream(
    cluster: NatsCluster, config: ClusterConfig, record_property: Callable[[str, object], None]
) -> None:
    """SIGKILL the stream leader while four senders publish: every batch ends acknowledged, the
    stream holds each exactly once, in each sender's order, at the sequence its ack named; the
    killed node, restarted, catches up by itself."""
    stream = f"{config.stream_prefix}_W_{MODEL}"
    outcome = Outcome()
    killed_node: list[NatsNode] = []

    async def scenario() -> tuple[list[tuple[int, str | None]], int]:
        journal = await JetStreamCluster.connect(config)
        await journal.ensure_model(MODEL, max_rows=1_000_000, max_age=None)
        leader = cluster.stream_leader(stream)
        killed = asyncio.Event()

        async def kill_leader() -> None:
            while len(outcome.acks) < KILL_AFTER:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(leader.kill)
            killed_node.append(leader)
            killed.set()

        try:
            await asyncio.gather(kill_leader(), *(send(journal, k, outcome, killed) for k in range(SENDERS)))
            duplicates = journal.stats.duplicates
        finally:
            await journal.close()
        reader = await JetStreamCluster.connect(config)  # no cache: everything from the stream
        try:
            await reader.ensure_model(MODEL, max_rows=1_000_000, max_age=None)
            records = await reader.read_window(MODEL, max_rows=10**9, now=time.time())
        finally:
            await reader.close()
        return [(r.seq, r.msg_id) for r in records], duplicates

    stored, duplicates = run(scenario())
    [dead] = killed_node
    new_leader = cluster.stream_leader(stream)
    assert new_leader is not dead
    assert len(outcome.acks) == SENDERS * BATCHES
    ids = [batch_id for _, batch_id in stored]
    assert len(ids) == len(set(ids)) == SENDERS * BATCHES  # each batch once
    assert {batch_id: seq for seq, batch_id in stored} == {k: ack.seq for k, ack in outcome.acks.items()}
    for sender in range(SENDERS):
        mine = [i for i in ids if i is not None and i.startswith(f"s{sender}-")]
        assert mine == sorted(mine)  # in the order it sent them
    record_property("publishes_given_up_and_retried", outcome.unavailable)
    record_property("duplicates_recognised", duplicates)

    survivor = next(node for node in cluster.nodes if node is not dead)
    assert survivor.stream_state(stream)["messages"] == SENDERS * BATCHES  # type: ignore[index]
    dead.start()  # same store dir; no operator action beyond starting the process
    poll_until(
        lambda: same_copy(dead, survivor, stream),
        timeout=30,
        message=f"node {dead.name} to catch up on {stream}",
        on_timeout=cluster.logs,
    )
    replicas = cluster.stream_replicas(stream)
    assert replicas[dead.name]["current"] is True
    assert dead.stream_state(stream)["messages"] == SENDERS * BATCHES  # type: ignore[index]


def test_without_a_quorum_publish_fails_then_recovers(cluster: NatsCluster) -> None:
    """Two of three nodes down: no ack can come, publish raises ClusterUnavailable (503) in bounded
    time; with the nodes back, the same connection stores the same batch id, once."""
    config = make_config(cluster, publish_timeout=2.0)
    stream = f"{config.stream_prefix}_W_{MODEL}"

    async def scenario() -> tuple[float, ClusterUnavailable, PublishAck, PublishAck, list[str | None]]:
        journal = await JetStreamCluster.connect(config)
        try:
            await journal.ensure_model(MODEL, max_rows=100, max_age=None)
            leader = cluster.stream_leader(stream)
            down = [node for node in cluster.nodes if node is not leader]
            for node in down:
                await asyncio.to_thread(node.kill)
            started = time.monotonic()
            with pytest.raises(ClusterUnavailable) as caught:
                await journal.publish(MODEL, "rows", rows_body(0, 1), msg_id="q", rows=1)
            elapsed = time.monotonic() - started
            for node in down:
                await asyncio.to_thread(node.start)
            await asyncio.to_thread(cluster.wait_healthy, 60)
            ack = await journal.publish(MODEL, "rows", rows_body(0, 1), msg_id="q", rows=1)
            again = await journal.publish(MODEL, "rows", rows_body(0, 1), msg_id="q", rows=1)
            ids = [r.msg_id for r in await journal.read_window(MODEL, max_rows=100)]
            return elapsed, caught.value, ack, again, ids
        finally:
            await journal.close()

    elapsed, error, ack, again, ids = run(scenario())
    assert elapsed < 10
    assert error.retry_after > 0
    assert stream in error.detail
    assert (again.duplicate, again.seq) == (True, ack.seq)
    assert ids == ["q"]
