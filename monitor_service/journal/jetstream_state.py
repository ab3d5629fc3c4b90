"""Results and per-model state in a JetStream key-value bucket, with compare-and-set.

The bucket `<prefix>_STATE` (replicated like the streams) holds, per model, `result.<model>` (the
latest published result, readable by every monitor, so any of them serves /metrics for all), and
the state a calculation carries to the next: `drift.<model>` (the confirmed drift state) and
`labels.<model>` (the label-join state). Writers read an entry with its revision and write back
with `update(key, value, last=revision)`: when another worker wrote in between, the revision moved
and the write fails with StateConflict instead of overwriting; the loser reads again and retries.

`mirror()` keeps a local copy of the bucket current through a watch, so a scrape reads a dict and
never waits on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import api
from nats.js.kv import KeyValue

from monitor_service.errors import MonitorError
from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster

log = logging.getLogger(__name__)


def result_key(model: str) -> str:
    return f"result.{model}"


def drift_key(model: str) -> str:
    return f"drift.{model}"


def labels_key(model: str) -> str:
    return f"labels.{model}"


class StateConflict(MonitorError):
    """A compare-and-set lost: the entry is not at the revision the writer read (or exists already)."""

    def __init__(self, key: str, expected: int) -> None:
        super().__init__(
            f"{key!r} changed since revision {expected}: read it again and retry"
            if expected
            else f"{key!r} exists already"
        )
        self.key = key
        self.expected = expected


@dataclass(frozen=True)
class StateEntry:
    key: str
    value: bytes
    revision: int


class StateStore:
    """Get, create, compare-and-set update and put on the state bucket."""

    def __init__(self, kv: KeyValue, bucket: str) -> None:
        self._kv = kv
        self.bucket = bucket

    @classmethod
    async def open(cls, cluster: JetStreamCluster) -> StateStore:
        """The bucket, created (R = replicas, file storage, latest value only) when missing."""
        bucket = cluster.names.state_bucket
        js = cluster.jetstream
        try:
            try:
                kv = await js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                kv = await js.create_key_value(
                    bucket=bucket,
                    history=1,
                    replicas=cluster.config.replicas,
                    storage=api.StorageType.FILE,
                    description="drift-monitor: results and per-model state",
                )
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot open the state bucket {bucket}: {exc}") from exc
        return cls(kv, bucket)

    async def get(self, key: str) -> StateEntry | None:
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot read {key!r} from {self.bucket}: {exc}") from exc
        return StateEntry(key, bytes(entry.value or b""), int(entry.revision or 0))

    async def create(self, key: str, value: bytes) -> int:
        """Write `key` only if it does not exist; its revision, or StateConflict."""
        try:
            return int(await self._kv.create(key, value))
        except nats.js.errors.KeyWrongLastSequenceError:
            raise StateConflict(key, 0) from None
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot create {key!r} in {self.bucket}: {exc}") from exc

    async def update(self, key: str, value: bytes, *, last: int) -> int:
        """Write `key` only if it is still at revision `last`; the new revision, or StateConflict.

        A ClusterUnavailable here is ambiguous (the write may have landed): read the key again.
        """
        try:
            return int(await self._kv.update(key, value, last=last))
        except nats.js.errors.KeyWrongLastSequenceError:
            raise StateConflict(key, last) from None
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot update {key!r} in {self.bucket}: {exc}") from exc

    async def put(self, key: str, value: bytes) -> int:
        """Write `key` unconditionally (for values with one writer at a time, e.g. a result)."""
        try:
            return int(await self._kv.put(key, value))
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot write {key!r} to {self.bucket}: {exc}") from exc

    async def mirror(self, keys: str = ">", timeout: float = 5.0) -> StateMirror:
        """A local copy of the entries matching `keys`, loaded before this returns, then kept current."""
        try:
            watcher = await self._kv.watch(keys)
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot watch {self.bucket}: {exc}") from exc
        mirror = StateMirror(watcher)
        await mirror.start(timeout)
        return mirror


class StateMirror:
    """Entries of the bucket by key, updated as they change; `get` never touches the network."""

    def __init__(self, watcher: KeyValue.KeyWatcher) -> None:
        self._watcher = watcher
        self._entries: dict[str, StateEntry] = {}
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.updates = 0

    async def start(self, timeout: float) -> None:
        self._task = asyncio.create_task(self._follow(), name="state-mirror")
        try:
            await asyncio.wait_for(self._loaded.wait(), timeout)
        except TimeoutError:
            await self.close()
            raise ClusterUnavailable(f"the state bucket did not load within {timeout:g} s") from None

    async def _follow(self) -> None:
        async for entry in self._watcher:
            if entry is None:  # the marker after the initial values
                self._loaded.set()
                continue
            if entry.operation in ("DEL", "PURGE"):
                self._entries.pop(entry.key, None)
            else:
                self._entries[entry.key] = StateEntry(
                    entry.key, bytes(entry.value or b""), int(entry.revision or 0)
                )
            self.updates += 1
            if not self._loaded.is_set() and entry.delta == 0:
                self._loaded.set()

    def get(self, key: str) -> StateEntry | None:
        return self._entries.get(key)

    def items(self) -> list[tuple[str, StateEntry]]:
        return sorted(self._entries.items())

    async def close(self) -> None:
        with contextlib.suppress(nats.errors.Error):
            await self._watcher.stop()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
