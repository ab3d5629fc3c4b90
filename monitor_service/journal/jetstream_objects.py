"""Files every monitor of a cluster shares, in a JetStream object store bucket (`<prefix>_FILES`).

Replicated like the streams, so nothing a monitor writes sits on one node's disk: references replaced
through the API or moved by `moving_reference` (`reference/<model>`, Parquet), and stored reports
(`report/<model>/<file>`, cluster/reports.py). Objects are chunked by nats-py and checked against
their SHA-256 digest when read; `digest()` tells a reader whether its copy is current without
fetching the object. `FilesWatch` follows what the bucket holds (names and descriptions, never the
bytes), so a listing is a dict lookup.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.js.object_store import ObjectStore

from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster

log = logging.getLogger(__name__)
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

    async def put(self, name: str, data: bytes, description: str | None = None) -> str:
        """Store `data` under `name` (replacing it), with an optional description that watchers
        receive with the name; return its digest."""
        meta = api.ObjectMeta(name=name, description=description)
        try:
            info = await _bounded(self._store.put(name, data, meta))
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
        """The object's bytes and digest, or None when there is none (also when it was deleted
        while being read: the read then waits for chunks that are gone, until the timeout)."""
        try:
            result = await _bounded(self._store.get(name))
        except nats.js.errors.ObjectNotFoundError:
            return None
        except TimeoutError as exc:
            if await self.digest(name) is None:
                return None
            raise ClusterUnavailable(f"cannot read {name!r} from {self.bucket}: {exc}") from exc
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot read {name!r} from {self.bucket}: {exc}") from exc
        return bytes(result.data or b""), str(result.info.digest)

    async def delete(self, name: str) -> None:
        """Remove the object (nothing when there is none), its delete marker included: a bucket
        whose objects come and go (reports) does not keep a marker per object ever removed."""
        try:
            await _bounded(self._store.delete(name))
        except nats.js.errors.ObjectNotFoundError:
            return
        except (nats.errors.Error, TimeoutError) as exc:
            raise ClusterUnavailable(f"cannot delete {name!r} from {self.bucket}: {exc}") from exc
        try:
            await _bounded(self._js.purge_stream(self.stream, subject=self.meta_subject(name)))
        except (nats.errors.Error, TimeoutError) as exc:  # only the marker stays: harmless
            log.debug("the delete marker of %r stays: %s", name, exc)

    @property
    def stream(self) -> str:
        return f"OBJ_{self.bucket}"

    def meta_subject(self, name: str) -> str:
        encoded = base64.urlsafe_b64encode(name.encode()).decode()
        return f"$O.{self.bucket}.M.{encoded}"

    @property
    def _js(self) -> JetStreamContext:
        return self._store._js

    async def watch(
        self, listener: Listener, check_every: float = 5.0, timeout: float = 10.0, resync_every: float = 600.0
    ) -> FilesWatch:
        """Tell `listener` about every object the bucket holds, before this returns, then about every
        change (an object put: its info; removed: None) until the watch is stopped."""
        watch = FilesWatch(self, listener, check_every, resync_every)
        await watch.start(timeout)
        return watch


Listener = Callable[[str, "api.ObjectInfo | None"], None]  # (object name, info or None when removed)


class FilesWatch:
    """The bucket's objects by name, kept current through an ordered consumer on their meta
    subjects. Such a consumer lives on one server and may go silent when it dies: a guard compares,
    every `check_every` seconds, the newest meta message seen with the bucket's, and after two
    checks behind in a row watches again (objects gone meanwhile are reported removed then). It
    also watches again every `resync_every` seconds: a delete whose marker was purged before this
    watch was sent it (SharedFiles.delete purges markers) is reported then, at the latest."""

    def __init__(
        self, files: SharedFiles, listener: Listener, check_every: float, resync_every: float = 600.0
    ) -> None:
        self._files = files
        self._listener = listener
        self._check_every = check_every
        self._resync_every = resync_every
        self._watched_at = 0.0
        self._all_meta = f"$O.{files.bucket}.M.>"
        self._live: set[str] = set()  # names only: descriptions go to the listener
        self._seen = 0  # stream sequence of the newest meta message seen
        self._subscription: Subscription | None = None
        self._guard: asyncio.Task[None] | None = None
        self.rewatches = 0

    async def start(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._watch(), timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            await self.stop()
            raise ClusterUnavailable(f"the files bucket did not load within {timeout:g} s: {exc}") from None
        self._guard = asyncio.create_task(self._keep_current(), name="files-watch-guard")

    def names(self) -> list[str]:
        return sorted(self._live)

    async def _watch(self) -> None:
        """A new watch; returns once it delivered every object the bucket holds now. The names
        known before are replaced only then: a watch that fails midway leaves them as they were,
        so the next one still reports what went in between."""
        await self._unsubscribe()
        current: set[str] = set()
        loaded = asyncio.Event()
        if await self._last_meta_sequence() == 0:
            loaded.set()

        async def on_message(msg: Msg) -> None:
            info = api.ObjectInfo.from_response(json.loads(msg.data))
            self._seen = max(self._seen, msg.metadata.sequence.stream)
            if info.deleted:
                current.discard(info.name)
                self._tell(info.name, None)
            else:
                current.add(info.name)
                self._tell(info.name, info)
            if msg.metadata.num_pending == 0:
                loaded.set()

        self._subscription = await self._files._js.subscribe(
            self._all_meta,
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
        )
        await loaded.wait()
        before, self._live = self._live, current
        self._watched_at = asyncio.get_running_loop().time()
        for name in before - current:  # removed while no watch told us
            self._tell(name, None)

    def _tell(self, name: str, info: api.ObjectInfo | None) -> None:
        try:
            self._listener(name, info)
        except Exception:  # one listener's bug must not end the watch
            log.exception("the files bucket listener failed on %r", name)

    async def _last_meta_sequence(self) -> int:
        try:
            found = await self._files._js.get_last_msg(self._files.stream, self._all_meta)
        except nats.js.errors.NotFoundError:
            return 0
        return int(found.seq or 0)

    async def _keep_current(self) -> None:
        behind_before = False
        while True:
            await asyncio.sleep(self._check_every)
            try:
                behind = await self._last_meta_sequence() > self._seen
                due = asyncio.get_running_loop().time() - self._watched_at >= self._resync_every
                if (behind and behind_before) or due:
                    if not due:
                        log.warning("the files bucket watch fell behind; watching it again")
                    await asyncio.wait_for(self._watch(), timeout=max(30.0, self._check_every))
                    self.rewatches += 1
                    behind = False
                behind_before = behind
            except (TimeoutError, nats.errors.Error) as exc:  # the cluster is away: try again later
                log.debug("files bucket watch check failed: %s", exc)

    async def stop(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._guard
            self._guard = None
        await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._subscription.unsubscribe()
            self._subscription = None
