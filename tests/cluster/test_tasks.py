"""Calculation tasks: one per model per tick whatever the number of monitors; a task whose worker
dies unacknowledged is redelivered and completed by another."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from monitor_service.config import ClusterConfig
from monitor_service.journal.jetstream import JetStreamCluster
from monitor_service.journal.jetstream_tasks import Task, TaskQueue, tick_of
from tests.cluster.conftest import run
from tests.support.nats import NatsCluster
from tests.support.processes import REPO_ROOT, poll_until, start_process

pytestmark = pytest.mark.integration

EVERY = 60.0
SLOT = 28_333_333 * EVERY  # the start of a schedule slot (wall clock, seconds)


async def instance(config: ClusterConfig, server: str) -> tuple[JetStreamCluster, TaskQueue]:
    """A monitor's connection through one given node."""
    cluster = await JetStreamCluster.connect(config.model_copy(update={"servers": [server]}))
    queue = TaskQueue(cluster)
    await queue.ensure()
    return cluster, queue


async def stream_messages(cluster: JetStreamCluster) -> int:
    info = await cluster.jetstream.stream_info(cluster.names.tasks_stream)
    return int(info.state.messages)


def test_each_tick_is_one_task_whatever_the_monitors(cluster: NatsCluster, config: ClusterConfig) -> None:
    async def scenario() -> tuple[list[tuple[int, bool, int]], int, list[int], int, int, list[int]]:
        instances = [await instance(config, node.url) for node in cluster.nodes]
        try:
            # three monitors publish the same tick at slightly different moments of the slot
            published = []
            for offset, (_, queue) in zip((0.2, 1.5, 3.9), instances, strict=True):
                tick, ack = await queue.publish_tick("m1", EVERY, now=SLOT + offset)
                published.append((tick, ack.duplicate, ack.seq))
            stored = await stream_messages(instances[0][0])
            # two workers pull at once: one gets it
            pulled = await asyncio.gather(*(queue.pull(batch=5, timeout=1.0) for _, queue in instances[:2]))
            tasks: list[Task] = [task for batch in pulled for task in batch]
            assert len(tasks) == 1
            await tasks[0].ack()
            # a late monitor, still within the duplicate window: nothing new
            _, late = await instances[2][1].publish_tick("m1", EVERY, now=SLOT + 30)
            empty = await poll_empty(instances[0][0])
            next_tick, _ = await instances[1][1].publish_tick("m1", EVERY, now=SLOT + EVERY + 0.1)
            other_model, _ = await instances[1][1].publish_tick("m2", EVERY, now=SLOT + 0.3)
            left = await stream_messages(instances[0][0])
            sizes = [len(batch) for batch in pulled]
            return published, stored, sizes, int(late.duplicate), empty + left, [next_tick, other_model]
        finally:
            for connection, _ in instances:
                await connection.close()

    published, stored, pulled, late_duplicate, stored_after, ticks = run(scenario())
    tick = tick_of(EVERY, SLOT)
    assert published == [(tick, False, 1), (tick, True, 1), (tick, True, 1)]
    assert stored == 1
    assert sorted(pulled) == [0, 1]
    assert late_duplicate == 1
    assert stored_after == 2  # the next tick, and the same tick of another model
    assert ticks == [tick + 1, tick]


async def poll_empty(cluster: JetStreamCluster) -> int:
    """Wait (bounded) until the acknowledged task left the work queue; return what is left."""
    for _ in range(50):
        if (left := await stream_messages(cluster)) == 0:
            return 0
        await asyncio.sleep(0.05)
    return left


def test_task_of_a_killed_worker_is_redelivered(
    cluster: NatsCluster, config: ClusterConfig, tmp_path: Path
) -> None:
    """A worker process takes the task and is SIGKILLed before acknowledging: after ack_wait (2 s)
    another worker gets the same task, second delivery, completes it, and it is gone."""

    async def publish() -> int:
        connection, queue = await instance(config, cluster.urls[0])
        try:
            tick, _ = await queue.publish_tick("m1", EVERY, now=SLOT + 1)
            return tick
        finally:
            await connection.close()

    tick = run(publish())
    settings = config.model_dump(mode="json", exclude={"password"})
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DM_TEST_CLUSTER": json.dumps(settings),
        "DRIFT_MONITOR_NATS_PASSWORD": cluster.password,
    }
    worker = start_process(
        "doomed-worker",
        [sys.executable, "-m", "tests.cluster.task_worker"],
        tmp_path / "worker.log",
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        poll_until(
            lambda: "working on m1" in worker.log() or not worker.is_running(),
            timeout=30,
            message="the worker to take the task",
            on_timeout=worker.log_tail,
        )
        assert worker.log().strip() == f"working on m1 {tick} 1", worker.log_tail()
    finally:
        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL

    async def take_over() -> tuple[list[tuple[str, int, int]], list[Task], int]:
        connection, queue = await instance(config, cluster.urls[1])
        try:
            redelivered = await queue.pull(timeout=8.0)  # ack_wait is 2 s
            got = [(t.model, t.tick, t.deliveries) for t in redelivered]
            for task in redelivered:
                async with task.kept_alive(0.5):
                    await asyncio.sleep(2.5)  # longer than ack_wait: in_progress keeps it ours
                await task.ack()
            again = await queue.pull(timeout=2.5)
            return got, again, await poll_empty(connection)
        finally:
            await connection.close()

    got, again, left = run(take_over())
    assert got == [("m1", tick, 2)]
    assert again == []  # neither redelivered during the long calculation nor after the ack
    assert left == 0


def test_a_changed_ack_wait_reaches_the_consumer(config: ClusterConfig, cluster: NatsCluster) -> None:
    async def scenario() -> list[tuple[float, int]]:
        seen = []
        for ack_wait, max_deliver in ((2.0, 5), (7.0, 3)):
            changed = config.model_copy(update={"task_ack_wait": ack_wait, "task_max_deliver": max_deliver})
            connection, _ = await instance(changed, cluster.urls[0])
            try:
                info = await connection.jetstream.consumer_info(
                    connection.names.tasks_stream, connection.names.workers
                )
                seen.append((float(info.config.ack_wait or 0), int(info.config.max_deliver or 0)))
            finally:
                await connection.close()
        return seen

    assert run(scenario()) == [(2.0, 5), (7.0, 3)]
