"""Results and per-model state in a JetStream key-value bucket, with compare-and-set.

The bucket `<prefix>_STATE` (replicated like the streams) holds, per model, `result.<model>` (the
latest published result, readable by every monitor, so any of them serves /metrics for all, and
with it everything a calculation carries to the next, the confirmed drift state included:
cluster/entry.py). `drift.<model>` and `labels.<model>` are reserved names for state kept apart
from the result (unused by the cluster member). Writers read an entry with its revision and write back
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

    async def mirror(self, timeout: float = 5.0, check_every: float = 5.0) -> StateMirror:
        """A local copy of every entry, loaded before this returns, then kept current (and the watch
        behind it re-made whenever it falls behind the bucket, e.g. after a node was lost)."""
        mirror = StateMirror(self._kv, self.bucket, check_every)
        await mirror.start(timeout)
        return mirror


class StateMirror:
    """Entries of the bucket by key, updated as they change; `get` never touches the network.

    A watch is an ordered consumer on one server: when that server dies the watch may go silent
    without an error. A guard compares, every `check_every` seconds, the newest revision seen with
    the bucket's last sequence; a watch behind on two checks in a row is replaced by a new one
    (which loads every entry again).
    """

    def __init__(self, kv: KeyValue, bucket: str, check_every: float = 5.0) -> None:
        self._kv = kv
        self._stream = f"KV_{bucket}"
        self._check_every = check_every
        self._entries: dict[str, StateEntry] = {}
        self._revision = 0  # newest revision seen
        self._watcher: KeyValue.KeyWatcher | None = None
        self._follower: asyncio.Task[None] | None = None
        self._guard: asyncio.Task[None] | None = None
        self.updates = 0
        self.rewatches = 0

    async def start(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._watch(), timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            await self.close()
            raise ClusterUnavailable(f"the state bucket did not load within {timeout:g} s: {exc}") from None
        self._guard = asyncio.create_task(self._keep_current(), name="state-mirror-guard")

    async def _watch(self) -> None:
        """A new watch; returns once it delivered every current entry."""
        await self._stop_watch()
        self._watcher = await self._kv.watch(">")
        loaded = asyncio.Event()
        self._follower = asyncio.create_task(self._follow(self._watcher, loaded), name="state-mirror")
        await loaded.wait()

    async def _follow(self, watcher: KeyValue.KeyWatcher, loaded: asyncio.Event) -> None:
        async for entry in watcher:
            if entry is None:  # the marker after the initial values
                loaded.set()
                continue
            if entry.operation in ("DEL", "PURGE"):
                self._entries.pop(entry.key, None)
            else:
                self._entries[entry.key] = StateEntry(
                    entry.key, bytes(entry.value or b""), int(entry.revision or 0)
                )
            self._revision = max(self._revision, int(entry.revision or 0))
            self.updates += 1
            if not loaded.is_set() and entry.delta == 0:
                loaded.set()

    async def _keep_current(self) -> None:
        behind_before = False
        while True:
            await asyncio.sleep(self._check_every)
            try:
                info = await self._kv._js.stream_info(self._stream)
                behind = int(info.state.last_seq) > self._revision
                if behind and behind_before:
                    log.warning("the state mirror fell behind the bucket; watching it again")
                    await asyncio.wait_for(self._watch(), timeout=max(5.0, self._check_every))
                    self.rewatches += 1
                    behind = False
                behind_before = behind
            except (TimeoutError, nats.errors.Error) as exc:  # the cluster is away: try again later
                log.debug("state mirror check failed: %s", exc)

    def get(self, key: str) -> StateEntry | None:
        return self._entries.get(key)

    def items(self) -> list[tuple[str, StateEntry]]:
        return sorted(self._entries.items())

    async def _stop_watch(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._watcher.stop()  # type: ignore[no-untyped-call]
            self._watcher = None
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None

    async def close(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._guard
        await self._stop_watch()
