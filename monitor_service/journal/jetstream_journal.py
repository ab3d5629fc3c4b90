"""`JetStreamJournal`: the Journal of one model in cluster mode, on the cluster's shared stream.

`append` publishes a batch and returns once JetStream acknowledged it on a majority of replicas (the
202 waits for it); the batch id becomes the message id, so a retried batch is stored once. Rows
travel as the validated batch in Arrow (journal/columnar.py), labels as the body received. Nothing
is kept on this machine's disk: `recover` has nothing to give, the window is fed by `read_since`
(ModelState.catch_up), and a replaced reference goes to the cluster's files bucket, where every
monitor picks it up (`shared_reference`).
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pandas as pd

from monitor_service.config import ClusterConfig, ModelConfig
from monitor_service.errors import MonitorError
from monitor_service.journal import Checkpoint, LogRead, Record, ReplayReport
from monitor_service.journal.columnar import FORMAT
from monitor_service.journal.jetstream import JetStreamCluster, StreamRecord
from monitor_service.journal.jetstream_objects import SharedFiles, reference_object

H_FORMAT = "Dm-Format"
_T = TypeVar("_T")


class ClusterNotConnected(MonitorError):
    """Used before the service connected to the cluster (a bug, not a condition to handle)."""


class JetStreamConnection:
    """The one connection of a monitor to the cluster, shared by every model's journal; set at start."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._cluster: JetStreamCluster | None = None
        self._files: SharedFiles | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, cluster: JetStreamCluster, files: SharedFiles) -> None:
        self._cluster, self._files = cluster, files
        self._loop = asyncio.get_running_loop()

    @property
    def cluster(self) -> JetStreamCluster:
        if self._cluster is None:
            raise ClusterNotConnected("the cluster connection is not open yet")
        return self._cluster

    @property
    def files(self) -> SharedFiles:
        if self._files is None:
            raise ClusterNotConnected("the cluster connection is not open yet")
        return self._files

    def run_from_thread(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a coroutine (made by `call`) on the connection's event loop from another thread."""
        if self._loop is None:
            raise ClusterNotConnected("the cluster connection is not open yet")
        if self._loop.is_closed():
            raise ClusterNotConnected("the cluster connection is closed")
        return asyncio.run_coroutine_threadsafe(_awaited(call()), self._loop).result()


async def _awaited(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


class JetStreamJournal:
    """One model's share of the cluster: its stream, its trims, its shared reference."""

    durable = True
    size = 0  # no local log
    needs_final_checkpoint = False

    def __init__(self, connection: JetStreamConnection, model: ModelConfig) -> None:
        self._connection = connection
        self.model = model.name
        self.report = ReplayReport()
        self._reference_digest: str | None = None

    # -- the Journal protocol ------------------------------------------------------------------

    def recover(self) -> tuple[Checkpoint | None, Iterator[Record]]:
        """Nothing here: the window comes from the stream (`read_since`)."""
        return None, iter(())

    def open_new_segment(self) -> int:
        return 0

    async def append(self, record: Record, batch_id: str | None = None) -> None:
        """Publish and wait for the replicated ack; ClusterUnavailable (503) or PayloadTooLarge (413)
        otherwise, nothing stored. Without a batch id, a retry of the same batch is a new batch."""
        await self._connection.cluster.publish(
            self.model,
            record.kind,
            record.body,
            msg_id=batch_id or uuid.uuid4().hex,
            rows=record.items,
            body_format=record.body_format,
            arrived=record.arrived,
            headers={H_FORMAT: FORMAT} if record.columnar else None,
        )

    async def maintain(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Nothing to maintain locally: JetStream keeps the stream."""

    async def compact(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Nothing to compact: `trim` keeps the stream near the window."""

    def save_reference(self, frame: pd.DataFrame) -> None:
        """Store the reference in the files bucket for every monitor (called from a thread)."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        digest = self._connection.run_from_thread(
            lambda: self._connection.files.put(reference_object(self.model), data)
        )
        self._reference_digest = str(digest)

    def saved_reference(self) -> pd.DataFrame | None:
        """Not known before the connection opens: see `shared_reference`."""
        return None

    def close(self) -> None:
        """The connection is closed once, by the service."""

    # -- the SharedJournal protocol ------------------------------------------------------------

    async def read_since(
        self, position: int, *, now: float, max_rows: int, max_age: float | None, labels_lookback: float
    ) -> LogRead:
        cluster = self._connection.cluster
        if max_age is None:
            max_age = cluster.config.retention.max_age
        read = await cluster.read_since(
            self.model, position, max_rows=max_rows, max_age=max_age, now=now, labels_lookback=labels_lookback
        )
        return LogRead([(r.seq, _as_record(r)) for r in read.records], read.reset, read.last_seq)

    async def trim(self) -> None:
        await self._connection.cluster.trim(self.model)

    async def shared_reference(self) -> pd.DataFrame | None:
        files = self._connection.files
        name = reference_object(self.model)
        digest = await files.digest(name)
        if digest is None or digest == self._reference_digest:
            return None
        found = await files.get(name)
        if found is None:
            return None
        data, self._reference_digest = found
        return await asyncio.to_thread(pd.read_parquet, io.BytesIO(data))


def _as_record(record: StreamRecord) -> Record:
    return Record(
        record.kind,
        record.arrived,
        record.body_format,
        record.body,
        items=record.rows,
        columnar=record.headers.get(H_FORMAT) == FORMAT,
    )
