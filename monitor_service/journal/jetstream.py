"""Cluster mode's journal on NATS JetStream: publish-before-202 and windows read back from the stream.

Each model has its own stream, `<prefix>_W_<model>`, replicated `replicas` times on file storage,
with two subjects: `<prefix>.w.<model>.rows` and `<prefix>.w.<model>.labels`. One stream keeps the
model's rows and labels in one total order (the stream sequence), so the label join reproduces what
one node would have done; two subjects keep per-subject limits apart, so labels never push rows out.

A message is one accepted request body exactly as received, with headers: `Nats-Msg-Id` (the
batch id, so a retried batch is stored once within `duplicate_window`), `Dm-Rows` (its row or label
count), `Dm-Arrived` (the arrival time the accepting monitor validated it with) and `Dm-Body-Format`
(bodies.py's format byte: 0 JSON, 1 NDJSON, 2 Arrow, +16 gzip; streams written before it say
`Dm-Ndjson: 0|1`, still read). Rows are stored validated, as Arrow (`Dm-Format: arrow`).

Windows are windows of ROWS: `read_window` keeps the newest messages holding at least `max_rows`
rows and none older than `max_age` (by arrival), exactly the rows a local window would hold after
replaying them. The stream's own limits are only a generous upper bound: `max_msgs_per_subject` =
`max_rows` (a message holds at least one row, so the newest `max_rows` messages always hold the
window) and `max_age` = window age + label look-back + a margin for skew. `trim` purges what
the last read no longer needed, which is what keeps a model's stream near its window size.

Reads are incremental: each model's cache holds what the last read kept; the next read asks the
stream only for messages after the last sequence it saw, with an ordered consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from monitor_service.config import ClusterConfig, ModelConfig
from monitor_service.errors import BadRequest, MonitorError, PayloadTooLarge, StorageUnavailable
from monitor_service.journal.jetstream_window import (
    KINDS,
    LABEL_MARGIN,
    RecordKind,
    StreamRecord,
    WindowCache,
)

__all__ = [
    "KINDS",
    "ClusterUnavailable",
    "JetStreamCluster",
    "JournalStats",
    "Names",
    "PublishAck",
    "RecordKind",
    "StreamRead",
    "StreamRecord",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MSG_ID = "Nats-Msg-Id"
H_ROWS = "Dm-Rows"
H_ARRIVED = "Dm-Arrived"
H_BODY_FORMAT = "Dm-Body-Format"
H_NDJSON = "Dm-Ndjson"  # before Dm-Body-Format: "1" for NDJSON, else JSON
# Headers and the protocol line travel with the body and count against the server's max_payload.
_HEADER_ALLOWANCE = 1024
# Batch ids and header names go into the NATS protocol: no spaces, no line breaks.
_TOKEN = re.compile(r"[\x21-\x7e]{1,200}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{0,1000}")
_READ_IDLE_TIMEOUT = 5.0
_PATIENCE = 30.0  # seconds reads and stream management keep retrying through elections


class ClusterUnavailable(StorageUnavailable):
    """The NATS cluster did not answer in time: no connection, no replicated ack, or a stalled read.

    Nothing was acknowledged; the API answers 503 with `Retry-After`, and a client retrying with the
    same batch id is stored once.
    """

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(
            "the cluster did not acknowledge in time; nothing was stored",
            detail=message,
            retry_after=max(1, math.ceil(retry_after)),
        )


@dataclass(frozen=True)
class PublishAck:
    """JetStream's acknowledgement: the message is stored on a majority of the stream's replicas."""

    stream: str
    seq: int
    duplicate: bool  # the batch id was already stored within duplicate_window: `seq` is the first copy's


@dataclass(frozen=True)
class StreamRead:
    """What `read_since` found: records to replay in stream order, and whether they start the window
    from scratch (`reset`: the first read, a recreated stream, or messages after the given sequence
    that are gone: trimmed or aged out before this reader saw them). `last_seq` is where the next
    read goes on from."""

    records: list[StreamRecord]
    reset: bool
    last_seq: int


@dataclass
class JournalStats:
    """Counters for /metrics; only ever incremented (gauges are computed when read)."""

    publishes: int = 0
    publish_retries: int = 0
    publish_failures: int = 0
    duplicates: int = 0
    reads: int = 0
    messages_fetched: int = 0
    disconnects: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class Names:
    """Every stream, subject, consumer and bucket name, from the prefix and the model name.

    Model names may hold `.`, a subject token separator and not allowed in stream names: it becomes
    `~` (which model names cannot hold, so the mapping is one to one). Key-value keys keep the name.
    """

    prefix: str

    @staticmethod
    def token(model: str) -> str:
        return model.replace(".", "~")

    def window_stream(self, model: str) -> str:
        return f"{self.prefix}_W_{self.token(model)}"

    def subject(self, model: str, kind: RecordKind) -> str:
        return f"{self.prefix}.w.{self.token(model)}.{kind}"

    @property
    def tasks_stream(self) -> str:
        return f"{self.prefix}_TASKS"

    def task_subject(self, model: str) -> str:
        return f"{self.prefix}.tasks.{self.token(model)}"

    @property
    def workers(self) -> str:
        return "workers"

    @property
    def state_bucket(self) -> str:
        return f"{self.prefix}_STATE"


def _retryable(exc: BaseException) -> bool:
    """Errors a retry with the same message id can cure: no ack yet, no leader, reconnecting."""
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return True
    if isinstance(exc, nats.js.errors.APIError):
        return exc.code == 503
    return isinstance(
        exc,
        nats.errors.TimeoutError
        | TimeoutError
        | nats.js.errors.NoStreamResponseError
        | nats.errors.NoRespondersError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.StaleConnectionError
        | nats.errors.OutboundBufferLimitError,
    )


class JetStreamCluster:
    """One connection to the NATS cluster, the model streams on it, and their window caches.

    Build it with `await JetStreamCluster.connect(config)`; `tasks()` and `state()` give the task
    queue and the key-value bucket on the same connection.
    """

    def __init__(self, config: ClusterConfig, client: Client) -> None:
        self.config = config
        self.names = Names(config.stream_prefix)
        self.stats = JournalStats()
        self._nc = client
        # one attempt of a request; retries go on until publish_timeout
        self._attempt_timeout = max(0.5, min(2.0, config.publish_timeout / 2))
        self._js: JetStreamContext = client.jetstream(timeout=self._attempt_timeout)
        self._caches: dict[str, WindowCache] = {}  # read_window: the cut window, bodies included
        self._feeds: dict[str, WindowCache] = {}  # read_since: the cut window without bodies (for trim)
        self._streams: dict[str, str] = {}
        self._closing = False

    # -- connection ---------------------------------------------------------------------------

    @classmethod
    async def connect(cls, config: ClusterConfig, *, name: str | None = None) -> JetStreamCluster:
        """Connect (reconnecting for ever afterwards) or raise ClusterUnavailable after
        `connect_timeout` per server; the reason never carries credentials."""
        client = Client()
        cluster: JetStreamCluster | None = None
        last_error: list[str] = []
        refusals: list[str] = []
        refusal = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            message = f"{type(exc).__name__}: {exc}"
            if not last_error or last_error[-1] != message:  # one line per distinct failure
                log.warning("NATS connection: %s", message)
            last_error[:] = [message]
            if "authorization violation" in message.lower() or "authentication" in message.lower():
                refusals.append(message)  # the reason to give, whatever error comes after it
                refusal.set()

        async def on_disconnected() -> None:
            if client.is_closed or (cluster is not None and cluster._closing):
                return
            if cluster is not None:
                cluster.stats.disconnects += 1
            log.warning("disconnected from NATS; reconnecting")

        async def on_reconnected() -> None:
            if cluster is not None:
                cluster.stats.reconnects += 1
            url = client.connected_url
            log.info("reconnected to NATS at %s", url.netloc if url else "?")

        options = _connect_options(config)
        deadline = config.connect_timeout * (len(config.servers) + 1)
        connecting = asyncio.ensure_future(
            client.connect(
                **options,
                name=name or config.name or f"drift-monitor@{socket.gethostname()}:{os.getpid()}",
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
            )
        )
        refused = asyncio.ensure_future(refusal.wait())  # wrong credentials: no point in retrying
        await asyncio.wait({connecting, refused}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        refused.cancel()
        failure = None
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, nats.errors.Error, OSError):
                await connecting
        elif connecting.exception() is not None:
            failure = connecting.exception()
        if not client.is_connected:
            await client.close()
            said = refusals or last_error  # a refusal explains the connection resets that follow it
            reason = said[-1] if said else f"{type(failure).__name__}: {failure}"
            raise ClusterUnavailable(
                f"cannot connect to NATS ({', '.join(config.servers)}) within {deadline:g} s: {reason}"
            ) from None
        cluster = cls(config, client)
        url = client.connected_url
        log.info(
            "connected to NATS at %s (max_payload %d bytes)", url.netloc if url else "?", client.max_payload
        )
        return cluster

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def max_payload(self) -> int:
        """Largest message the servers accept (their `max_payload`); larger bodies get 413."""
        return int(self._nc.max_payload)

    @property
    def jetstream(self) -> JetStreamContext:
        """The underlying JetStream context (the task queue, the state store and benchmarks use it)."""
        return self._js

    async def close(self) -> None:
        self._closing = True
        await self._nc.close()

    # -- streams ------------------------------------------------------------------------------

    def stream_config(self, model: str, *, max_rows: int, max_age: float | None) -> api.StreamConfig:
        retention = self.config.retention
        duplicate_window = self.config.duplicate_window
        if max_age is not None:  # JetStream refuses a duplicate window longer than max_age
            duplicate_window = min(duplicate_window, max_age)
        return api.StreamConfig(
            name=self.names.window_stream(model),
            description=f"drift-monitor: rows and labels of model {model}",
            subjects=[self.names.subject(model, kind) for kind in KINDS],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.config.replicas,
            max_msgs_per_subject=max_rows,
            max_age=max_age or 0,
            max_bytes=retention.max_bytes_per_model or -1,
            discard=api.DiscardPolicy.OLD,
            duplicate_window=duplicate_window,
            allow_direct=True,
        )

    async def ensure_model(self, model: str, *, max_rows: int, max_age: float | None) -> None:
        """Create the model's stream, or update it when its limits or replicas changed."""
        wanted = self.stream_config(model, max_rows=max_rows, max_age=max_age)
        name = self.names.window_stream(model)
        try:
            info = await self.retrying(f"read stream {name}", lambda: self._js.stream_info(name))
        except nats.js.errors.NotFoundError:
            await self.retrying(f"create stream {name}", lambda: self._js.add_stream(wanted))
            log.info("created stream %s (R%d)", name, self.config.replicas)
        else:
            if _differs(info.config, wanted):
                await self.retrying(f"update stream {name}", lambda: self._js.update_stream(wanted))
                log.info("updated stream %s to the configured limits", name)
        self._streams[model] = name

    async def ensure_models(self, models: Sequence[ModelConfig]) -> None:
        """`ensure_model` for every configured model, with the limits its window needs."""
        for model in models:
            await self.ensure_model(
                model.name, max_rows=model.window.max_rows, max_age=self.config.stream_max_age(model)
            )

    async def retrying(
        self, what: str, call: Callable[[], Awaitable[_T]], timeout: float | None = None
    ) -> _T:
        """`call()` until it succeeds, retrying what an election or a reconnect explains (no
        responders, timeouts, 503) for at most `timeout` (default: max(publish_timeout, 30 s): creating
        a consumer waits for the meta leader, whose re-election took about 6 s on 2.9); then
        ClusterUnavailable. NotFoundError passes through for the caller to handle."""
        loop = asyncio.get_running_loop()
        timeout = max(self.config.publish_timeout, _PATIENCE) if timeout is None else timeout
        deadline = loop.time() + timeout
        backoff = 0.05
        while True:
            try:
                return await call()
            except nats.js.errors.NotFoundError:
                raise
            except (TimeoutError, nats.errors.Error) as exc:
                if not _retryable(exc) or loop.time() + backoff >= deadline:
                    raise ClusterUnavailable(
                        f"cannot {what}: {exc or type(exc).__name__}", retry_after=min(timeout, 5.0)
                    ) from exc
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, 0.5)

    def _stream(self, model: str) -> str:
        try:
            return self._streams[model]
        except KeyError:
            raise MonitorError(f"no stream for model {model!r}: call ensure_model first") from None

    # -- publish ------------------------------------------------------------------------------

    async def publish(
        self,
        model: str,
        kind: RecordKind,
        body: bytes,
        *,
        msg_id: str,
        rows: int,
        body_format: int = 0,
        arrived: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> PublishAck:
        """Store one accepted body; return once JetStream acknowledged it (a majority of replicas).

        Retries with the same message id until `publish_timeout`, so a lost ack or a leader election
        costs time, never a second copy. Raises PayloadTooLarge (413) for a body larger than the
        servers' max_payload and ClusterUnavailable (503) when no ack came in time.
        """
        stream = self._stream(model)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if not _TOKEN.fullmatch(msg_id):
            raise BadRequest(
                "a batch id (Idempotency-Key) is 1 to 200 printable ASCII characters without spaces"
            )
        for key, value in (headers or {}).items():
            if not _TOKEN.fullmatch(key) or not _HEADER_VALUE.fullmatch(value):
                raise ValueError(f"header {key!r} is not a valid NATS header")
        if len(body) + _HEADER_ALLOWANCE > self.max_payload:
            raise PayloadTooLarge(
                f"the body has {len(body)} bytes; cluster mode stores at most "
                f"{self.max_payload - _HEADER_ALLOWANCE} (the NATS servers' max_payload): "
                "send smaller batches",
                row_count=rows,
            )
        stamped = {
            **(headers or {}),
            MSG_ID: f"{kind}:{msg_id}",
            H_ROWS: str(rows),
            H_ARRIVED: repr(time.time() if arrived is None else arrived),
            H_BODY_FORMAT: str(body_format),
        }
        return await self.publish_message(self.names.subject(model, kind), body, stamped, stream=stream)

    async def publish_message(
        self, subject: str, body: bytes, headers: Mapping[str, str], *, stream: str
    ) -> PublishAck:
        """Publish to `subject` of `stream` and wait for the replicated ack, retrying the same
        message (same `Nats-Msg-Id` in `headers`) until `publish_timeout`; ClusterUnavailable after."""
        ack = await self._publish(subject, body, dict(headers), stream)
        self.stats.publishes += 1
        if ack.duplicate:
            self.stats.duplicates += 1
        return ack

    async def _publish(self, subject: str, body: bytes, headers: dict[str, str], stream: str) -> PublishAck:
        loop = asyncio.get_running_loop()
        timeout = self.config.publish_timeout
        deadline = loop.time() + timeout
        attempt_timeout = self._attempt_timeout
        backoff = 0.05
        while True:
            remaining = deadline - loop.time()
            try:
                # a copy: nats-py adds Nats-Expected-Stream to the dict it is given
                ack = await self._js.publish(
                    subject, body, timeout=min(attempt_timeout, max(remaining, 0.05)), headers=dict(headers)
                )
                return PublishAck(ack.stream, ack.seq, bool(ack.duplicate))
            except Exception as exc:
                if not _retryable(exc):
                    self.stats.publish_failures += 1
                    raise ClusterUnavailable(f"stream {stream} refused the message: {exc}") from exc
                if loop.time() + backoff >= deadline:
                    self.stats.publish_failures += 1
                    raise ClusterUnavailable(
                        f"no acknowledgement from stream {stream} within {timeout:g} s "
                        f"(last: {type(exc).__name__})",
                        retry_after=min(timeout, 5.0),
                    ) from exc
                self.stats.publish_retries += 1
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, 0.5)

    # -- windows ------------------------------------------------------------------------------

    async def read_window(
        self,
        model: str,
        *,
        max_rows: int,
        max_age: float | None = None,
        now: float | None = None,
        labels_lookback: float = 0.0,
    ) -> list[StreamRecord]:
        """The model's window as stored records in stream order: the newest row messages holding at
        least `max_rows` rows (whole messages; the window drops the surplus oldest rows), none that
        arrived before `now - max_age`, and the label messages that can join them (those after the
        first kept row, and those at most `labels_lookback` seconds older, e.g. labels.pending_ttl).

        Reads only what is new since the last call; raises ClusterUnavailable when the stream does
        not answer.
        """
        stream = self._stream(model)
        cache = self._caches.setdefault(model, WindowCache())
        async with cache.lock:
            info = await self.retrying(f"read stream {stream}", lambda: self._js.stream_info(stream))
            state = info.state
            if state.last_seq < cache.last_seq or info.created != cache.stream_created:
                cache.reset()  # the stream was deleted and created again: start over
                cache.stream_created = info.created
            start = max(cache.last_seq + 1, state.first_seq)
            if state.messages and start <= state.last_seq:
                last = state.last_seq
                await self.retrying(
                    f"read stream {stream}",
                    lambda: self._fetch(model, stream, max(start, cache.last_seq + 1), last, cache),
                )
            margin = max(LABEL_MARGIN, self.config.publish_timeout)
            cache.cut(max_rows, max_age, time.time() if now is None else now, labels_lookback, margin)
            cache.complete = True
            self.stats.reads += 1
            return cache.records()

    async def read_since(
        self,
        model: str,
        after: int,
        *,
        max_rows: int,
        max_age: float | None = None,
        now: float | None = None,
        labels_lookback: float = 0.0,
    ) -> StreamRead:
        """Every record after sequence `after`, in stream order, for a reader that keeps its own
        window (ModelState in cluster mode) and has applied everything up to `after`.

        When that reader cannot go on from `after` (first read with `after` 0, a recreated
        stream, or records after `after` that are gone), the answer is a `reset`: the window as
        `read_window` cuts it (the newest row messages holding at least `max_rows` rows, none older
        than `max_age`, and the labels that can still join them), to be replayed from scratch.
        Bodies are not kept here once handed out; what the cut kept is remembered for `trim`.
        Raises ClusterUnavailable when the stream does not answer.
        """
        stream = self._stream(model)
        cache = self._feeds.setdefault(model, WindowCache())
        async with cache.lock:
            info = await self.retrying(f"read stream {stream}", lambda: self._js.stream_info(stream))
            state = info.state
            recreated = cache.stream_created is not None and info.created != cache.stream_created
            fresh: list[StreamRecord] = []
            reset = after <= 0 or recreated or state.last_seq < after
            if not reset and state.messages and state.last_seq > after:

                async def fetch_fresh() -> None:
                    start = fresh[-1].seq + 1 if fresh else after + 1
                    await self._fetch(model, stream, start, state.last_seq, fresh.append)

                await self.retrying(f"read stream {stream}", fetch_fresh)
            if not reset:
                # a hole in the sequence: records this reader never saw were removed
                reset = [record.seq for record in fresh] != list(range(after + 1, state.last_seq + 1))
            if reset:
                records = await self._read_all(model, stream, state, cache)
                cache.stream_created = info.created
            else:
                for record in fresh:
                    cache.add(_without_body(record))
                cache.last_seq = max(cache.last_seq, state.last_seq)
                records = fresh
            margin = max(LABEL_MARGIN, self.config.publish_timeout)
            cache.cut(max_rows, max_age, time.time() if now is None else now, labels_lookback, margin)
            if reset:  # hand out only what the cut kept
                kept = {record.seq for record in cache.records()}
                records = [record for record in records if record.seq in kept]
            self.stats.reads += 1
            return StreamRead(records, reset, max(cache.last_seq, after if not reset else 0))

    async def _read_all(
        self, model: str, stream: str, state: api.StreamState, cache: WindowCache
    ) -> list[StreamRecord]:
        """Every message the stream holds now, in order; once all arrived (never before: a cache
        missing the front of the window would make `trim` purge rows still needed), the cache
        restarts with their metadata."""
        records: list[StreamRecord] = []
        if state.messages:

            async def fetch_all() -> None:
                start = records[-1].seq + 1 if records else state.first_seq
                await self._fetch(model, stream, start, state.last_seq, records.append)

            await self.retrying(f"read stream {stream}", fetch_all)
        cache.reset()
        for record in records:
            cache.add(_without_body(record))
        cache.last_seq = max(cache.last_seq, state.last_seq)
        cache.complete = True
        return records

    async def _fetch(
        self,
        model: str,
        stream: str,
        start: int,
        last: int,
        sink: WindowCache | Callable[[StreamRecord], None],
    ) -> None:
        """Messages `start`.. (at least to `last`) into `sink` (a cache, or a callable taking each
        record), through an ordered consumer. What arrived stays there when it fails: a retry goes
        on from there."""
        add = sink.add if isinstance(sink, WindowCache) else sink
        known = sink.last_seq if isinstance(sink, WindowCache) else start - 1
        subject = f"{self.names.prefix}.w.{self.names.token(model)}.>"
        sub = await self._js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start),
        )
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=_READ_IDLE_TIMEOUT)
                except nats.errors.TimeoutError:
                    # the messages left may have been removed (age, trim) after stream_info
                    info = await self._js.stream_info(stream)
                    if info.state.last_seq <= known or not info.state.messages:
                        return
                    raise
                record = _record(msg)
                add(record)
                known = max(known, record.seq)
                self.stats.messages_fetched += 1
                if record.seq >= last or msg.metadata.num_pending == 0:
                    return
        finally:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                log.debug("unsubscribing the ordered consumer of %s failed", stream, exc_info=True)

    def cached_messages(self, model: str) -> int:
        cache = self._caches.get(model)
        return len(cache.rows) + len(cache.labels) if cache else 0

    async def trim(self, model: str) -> int:
        """Purge what the model's last `read_window` no longer kept: row messages before its first
        row message and label messages before its first label. Return the messages purged.

        Call it after a calculation read the window, so a model's stream stays near its window
        size whatever its `max_msgs_per_subject`. A no-op before the first read.
        """
        stream = self._stream(model)
        cache = self._feeds.get(model) or self._caches.get(model)
        if cache is None or not cache.last_seq or not cache.complete:
            return 0
        purged = 0
        kept_by_kind: tuple[tuple[RecordKind, deque[StreamRecord]], ...] = (
            ("rows", cache.rows),
            ("labels", cache.labels),
        )
        for kind, kept in kept_by_kind:
            keep_from = kept[0].seq if kept else cache.last_seq + 1
            if keep_from <= 1:  # nothing before it; and to the server, seq 0 or 1 means purge ALL
                continue
            request = json.dumps({"filter": self.names.subject(model, kind), "seq": keep_from}).encode()
            # the JetStream API directly: nats-py's purge_stream drops the count purged
            reply = await self.retrying(
                f"trim stream {stream}",
                lambda request=request: self._nc.request(  # type: ignore[misc]
                    f"$JS.API.STREAM.PURGE.{stream}", request, timeout=self._attempt_timeout
                ),
            )
            answer = json.loads(reply.data)
            if "error" in answer:
                raise ClusterUnavailable(f"cannot trim stream {stream}: {answer['error']}")
            purged += int(answer.get("purged", 0))
        return purged


def _without_body(record: StreamRecord) -> StreamRecord:
    return replace(record, body=b"", headers={})


def _record(msg: Msg) -> StreamRecord:
    headers = dict(msg.headers or {})
    kind: RecordKind = "rows" if msg.subject.endswith(".rows") else "labels"
    return StreamRecord(
        seq=msg.metadata.sequence.stream,
        kind=kind,
        arrived=float(headers.get(H_ARRIVED, "0")),
        rows=int(headers.get(H_ROWS, "0")),
        body_format=_body_format(headers),
        body=msg.data,
        msg_id=(headers.get(MSG_ID) or "").split(":", 1)[-1] or None,
        headers=headers,
    )


def _body_format(headers: Mapping[str, str]) -> int:
    """The body's format byte; a message without one (older streams) says NDJSON or JSON."""
    value = headers.get(H_BODY_FORMAT)
    if value is not None and value.isdigit():
        return int(value)
    return 1 if headers.get(H_NDJSON) == "1" else 0


def _differs(current: api.StreamConfig, wanted: api.StreamConfig) -> bool:
    keys = ("subjects", "num_replicas", "max_msgs_per_subject", "max_age", "max_bytes", "duplicate_window")
    return any(_normal(getattr(current, key)) != _normal(getattr(wanted, key)) for key in keys)


def _normal(value: Any) -> Any:
    if value is None or value == -1:
        return 0
    return sorted(value) if isinstance(value, list) else value


def _connect_options(config: ClusterConfig) -> dict[str, Any]:
    """nats-py connect() options: servers, credentials (read from files here, never logged), TLS."""
    options: dict[str, Any] = {
        "servers": list(config.servers),
        "connect_timeout": config.connect_timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "ping_interval": 10,
        "max_outstanding_pings": 3,
    }
    if config.user is not None:
        options["user"] = config.user
        if config.password is not None:
            options["password"] = config.password.get_secret_value()
        elif config.password_file is not None:
            options["password"] = config.password_file.read_text(encoding="utf-8").strip()
    if config.nkeys_seed_file is not None:
        options["nkeys_seed"] = str(config.nkeys_seed_file)
    if config.creds_file is not None:
        options["user_credentials"] = str(config.creds_file)
    if config.tls is not None or any(url.startswith("tls://") for url in config.servers):
        options["tls"] = _tls_context(config)
        if config.tls is not None and config.tls.server_name:
            options["tls_hostname"] = config.tls.server_name
    return options


def _tls_context(config: ClusterConfig) -> ssl.SSLContext:
    tls = config.tls
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls and tls.ca_file else None
    )
    if tls is not None and tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context
