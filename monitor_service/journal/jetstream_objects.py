"""Files every monitor of a cluster shares, in a JetStream object store bucket (`<prefix>_FILES`).

Replicated like the streams, so nothing a monitor writes sits on one node's disk: references replaced
through the API or moved by `moving_reference` (`reference/<model>`, Parquet), and stored report
pages once a report store exists (`report/<model>/<id>`). Objects are chunked by nats-py and
checked against their SHA-256 digest when read; `digest()` tells a reader whether its copy is current
without fetching the object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import nats.errors
import nats.js.errors
from nats.js import api
from nats.js.object_store import ObjectStore

from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster

_T = TypeVar("_T")
# Reads go through an ordered consumer on one server: if that server dies mid-read, nats-py may
# wait for ever. Every operation is bounded.
_TIMEOUT = 30.0


async def _bounded(call: Awaitable[_T]) -> _T:
    return await asyncio.wait_for(call, _TIMEOUT)


def reference_object(model: str) -> str:
    return f"reference/{model}"


def report_object(model: str, report_id: str) -> str:
    return f"report/{model}/{report_id}"


class SharedFiles:
    """Put, get and look up objects of the cluster's files bucket."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self.bucket = bucket

    @classmethod
    async def open(cls, cluster: JetStreamCluster) -> SharedFiles:
        """The bucket, created (file storage, R = replicas) when missing."""
        bucket = f"{cluster.names.prefix}_FILES"
        js = cluster.jetstream
        try:
            try:
                store = await js.object_store(bucket)
            except nats.js.errors.BucketNotFoundError:
                store = await js.create_object_store(
                    bucket,
                    api.ObjectStoreConfig(
                        description="drift-monitor: references and reports shared by the monitors",
                        storage=api.StorageType.FILE,
                        replicas=cluster.config.replicas,
                    ),
                )
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot open the files bucket {bucket}: {exc}") from exc
        return cls(store, bucket)

    async def put(self, name: str, data: bytes) -> str:
        """Store `data` under `name` (replacing it); return its digest."""
        try:
            info = await _bounded(self._store.put(name, data))
        except (nats.errors.Error, TimeoutError) as exc:
            raise ClusterUnavailable(f"cannot store {name!r} in {self.bucket}: {exc}") from exc
        return str(info.digest)

    async def digest(self, name: str) -> str | None:
        """The digest of the object's current version, or None when there is none."""
        try:
            info = await _bounded(self._store.get_info(name))
        except nats.js.errors.ObjectNotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise ClusterUnavailable(f"cannot look up {name!r} in {self.bucket}: {exc}") from exc
        return str(info.digest)

    async def get(self, name: str) -> tuple[bytes, str] | None:
        """The object's bytes and digest, or None when there is none."""
        try:
            result = await _bounded(self._store.get(name))
        except nats.js.errors.ObjectNotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise ClusterUnavailable(f"cannot read {name!r} from {self.bucket}: {exc}") from exc
        return bytes(result.data or b""), str(result.info.digest)
