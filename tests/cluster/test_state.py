"""Results and per-model state in the key-value bucket: compare-and-set, visible to every monitor."""

from __future__ import annotations

import asyncio

import pytest

from monitor_service.config import ClusterConfig
from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster
from monitor_service.journal.jetstream_state import StateConflict, StateStore, drift_key, result_key
from tests.cluster.conftest import run
from tests.support.nats import NatsCluster

pytestmark = pytest.mark.integration


async def open_store(config: ClusterConfig, server: str) -> tuple[JetStreamCluster, StateStore]:
    cluster = await JetStreamCluster.connect(config.model_copy(update={"servers": [server]}))
    return cluster, await StateStore.open(cluster)


def test_two_workers_cannot_overwrite_each_other(cluster: NatsCluster, config: ClusterConfig) -> None:
    async def scenario() -> tuple[int, str, bytes, int]:
        (one, a), (two, b) = [await open_store(config, url) for url in cluster.urls[:2]]
        try:
            key = drift_key("m.1")
            first = await a.create(key, b'{"confirmed": false}')
            with pytest.raises(StateConflict):
                await b.create(key, b'{"confirmed": true}')  # it exists already
            read_a, read_b = await a.get(key), await b.get(key)
            assert read_a is not None and read_b is not None
            assert read_a.revision == read_b.revision == first
            # both computed a new state from the same revision; only the first write lands
            won = await a.update(key, b'{"confirmed": true, "by": "a"}', last=read_a.revision)
            with pytest.raises(StateConflict) as lost:
                await b.update(key, b'{"confirmed": true, "by": "b"}', last=read_b.revision)
            # the loser reads again and builds on what the winner wrote
            fresh = await b.get(key)
            assert fresh is not None and fresh.revision == won
            final = await b.update(key, fresh.value.replace(b'"a"', b'"a,b"'), last=fresh.revision)
            stored = await a.get(key)
            assert stored is not None and stored.revision == final
            return won, str(lost.value), stored.value, first
        finally:
            await one.close()
            await two.close()

    won, message, value, first = run(scenario())
    assert won > first
    assert f"since revision {first}" in message
    assert value == b'{"confirmed": true, "by": "a,b"}'


def test_every_monitor_sees_the_results(cluster: NatsCluster, config: ClusterConfig) -> None:
    """A result written through one node appears in another monitor's mirror (what /metrics reads)."""

    async def scenario() -> tuple[bytes | None, bytes | None, list[str]]:
        (writer_conn, writer), (reader_conn, reader) = [
            await open_store(config, url) for url in (cluster.urls[0], cluster.urls[2])
        ]
        try:
            await writer.put(result_key("old"), b"1")
            mirror = await reader.mirror()
            try:
                loaded = mirror.get(result_key("old"))
                await writer.put(result_key("m.1"), b'{"drift_share": 0.25}')
                await writer.put(drift_key("m.1"), b"not a result")
                for _ in range(100):  # bounded wait for the watch to deliver both writes
                    if mirror.get(result_key("m.1")) is not None and mirror.get(drift_key("m.1")):
                        break
                    await asyncio.sleep(0.02)
                latest = mirror.get(result_key("m.1"))
                return (
                    loaded.value if loaded else None,
                    latest.value if latest else None,
                    [key for key, _ in mirror.items()],
                )
            finally:
                await mirror.close()
        finally:
            await writer_conn.close()
            await reader_conn.close()

    loaded, latest, keys = run(scenario())
    assert loaded == b"1"  # present before mirror() returned
    assert latest == b'{"drift_share": 0.25}'
    assert keys == ["drift.m.1", "result.m.1", "result.old"]


def test_the_mirror_keeps_up_when_the_node_behind_its_watch_dies(
    cluster: NatsCluster, config: ClusterConfig
) -> None:
    """SIGKILL the node the mirror's watch (an ordered consumer) runs on: writes made afterwards
    still reach the mirror, through a new watch when the old one goes silent."""

    async def scenario() -> tuple[bytes | None, int]:
        stream = f"KV_{config.stream_prefix}_STATE"
        (writer_conn, writer), (reader_conn, reader) = [
            await open_store(config, url) for url in (cluster.urls[0], cluster.urls[1])
        ]
        try:
            await writer.put(result_key("m"), b"before")
            mirror = await reader.mirror(check_every=0.5)
            try:
                [watch_node] = cluster.consumer_leaders(stream).values()
                await asyncio.to_thread(watch_node.kill)
                deadline = asyncio.get_running_loop().time() + 40
                value = None
                while asyncio.get_running_loop().time() < deadline:
                    try:
                        await writer.put(result_key("m"), b"after")
                    except ClusterUnavailable:  # the election is under way
                        await asyncio.sleep(0.2)
                        continue
                    found = mirror.get(result_key("m"))
                    value = found.value if found else None
                    if value == b"after":
                        break
                    await asyncio.sleep(0.2)
                return value, mirror.rewatches
            finally:
                await mirror.close()
        finally:
            await writer_conn.close()
            await reader_conn.close()

    value, rewatches = run(scenario())
    assert value == b"after"
    assert rewatches >= 1  # the old watch went silent with its node
