"""One real 3-node NATS cluster (authentication on) for every test in tests/cluster/, started once.

Each test gets its own stream prefix, so tests never see each other's streams, and finds every
node up and healthy: a test that kills nodes leaves them restarted and caught up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.errors
import pytest

from monitor_service.config import ClusterConfig
from tests.cluster.monitors import cluster_section
from tests.support.nats import CLIENT_USER, NatsCluster

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run an async scenario to completion (the tests are plain functions)."""
    return asyncio.run(coroutine)


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster.create(tmp_path_factory.mktemp("nats"))
    try:  # a node that fails to start must not leave the others running
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(nats_cluster: NatsCluster) -> Iterator[NatsCluster]:
    """The cluster with every node running and healthy, before and after the test; the streams and
    buckets the test made are deleted after it (dozens of R3 streams left behind keep a loaded
    2-core machine electing leaders, and the nodes from reporting healthy)."""
    nats_cluster.start(timeout=90)
    yield nats_cluster
    for node in nats_cluster.nodes:
        if not node.is_running():
            node.start()
    asyncio.run(delete_every_stream(nats_cluster))
    nats_cluster.wait_healthy(timeout=90)


async def delete_every_stream(cluster: NatsCluster) -> None:
    """Delete every stream (key-value and object buckets are streams too), retrying through
    elections for a while; what cannot be deleted in time stays."""
    client = await nats.connect(
        servers=[node.url for node in cluster.nodes if node.is_running()],
        user=CLIENT_USER,
        password=cluster.password,
        connect_timeout=5,
    )
    try:
        js = client.jetstream(timeout=5)
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            try:
                names = [info.config.name for info in await js.streams_info()]
                for name in names:
                    await js.delete_stream(name)
                return
            except (nats.errors.Error, TimeoutError):
                await asyncio.sleep(1.0)
    finally:
        await client.close()


def make_config(cluster: NatsCluster, prefix: str | None = None, **overrides: Any) -> ClusterConfig:
    settings = cluster_section(cluster, prefix, **{"password": cluster.password, **overrides})
    return ClusterConfig.model_validate(settings)


@pytest.fixture
def config(cluster: NatsCluster) -> ClusterConfig:
    return make_config(cluster)


@pytest.fixture
def nkey_seed_file(cluster: NatsCluster, tmp_path: Path) -> Path:
    path = tmp_path / "user.nk"
    path.write_text(cluster.nkey_seed + "\n")
    path.chmod(0o600)
    return path
