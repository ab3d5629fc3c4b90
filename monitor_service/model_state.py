"""ModelState: the one owner of a monitored model's state, and the frozen view readers get.

Everything that changes a model (rows and labels arriving, replay at start, calculations and their
status, a new reference, a reloaded config) goes through a method of its ModelState, so there is
one place to read to know who writes what. Readers (the Prometheus collector, `/v1/models`) get a
`ModelStats`: an immutable view, taken without waiting for a calculation.

In cluster mode (a `SharedJournal`) the window is fed only from the shared log: `ingest` and
`add_labels` validate and store, and `catch_up` replays the log's new records through the same
`_replay` as local recovery, so every monitor holds the same rows, arrival times and label joins.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import pandas as pd

from monitor_service.bodies import JSON, Limits, decode_rows, labels_of
from monitor_service.config import ModelConfig
from monitor_service.confirmation import ConfirmationState
from monitor_service.contracts import ContractCounts
from monitor_service.errors import (
    CalculationFailed,
    LabelsNotConfigured,
    MonitorError,
    RateLimited,
    StorageUnavailable,
    WindowEmpty,
)
from monitor_service.ground_truth import PendingLabels, last_wins
from monitor_service.journal import Checkpoint, Journal, Record, RecordKind, SharedJournal
from monitor_service.journal.columnar import decode_batch, encode_batch
from monitor_service.log_throttle import ThrottledLog
from monitor_service.model_quality.changes import quality_changes
from monitor_service.ratelimit import RowRateLimiter
from monitor_service.reference import checked
from monitor_service.results import CalculationResult, ModelStatus
from monitor_service.schema import Batch, CategoryInterner, RowSchema, validate_labels, validate_rows
from monitor_service.timestamps import EventLag
from monitor_service.window import SlidingWindow, WindowRows
from monitor_service.worker import CalculationWorker

log = logging.getLogger(__name__)
_BYTES_PER_FIELD = 32


@dataclass(frozen=True)
class RequestBody:
    """A request body as received and its format (bodies.py: JSON, NDJSON, Arrow; gzip), for the
    journal, which keeps it as sent so replay decodes it exactly as the request was."""

    body: bytes
    body_format: int = JSON


@dataclass(frozen=True)
class LabelsOutcome:
    """Labels accepted; in cluster mode `matched` and `pending` are None (the join happens later,
    when a monitor replays the shared log)."""

    model: str
    accepted: int
    matched: int | None
    pending: int | None
    duplicates: int = 0  # labels dropped because a later one in the same body had the same id


@dataclass(frozen=True)
class LabelTally:
    """Label counters that changed when one record of the shared log was replayed (cluster mode)."""

    position: int
    received: int
    matched: int
    expired: int


@dataclass(frozen=True)
class Calculated:
    """A calculation's result and, when asked for, Evidently's snapshot JSON of it."""

    result: CalculationResult
    snapshot: str | None = None


@dataclass(frozen=True)
class ModelStats:
    """What readers see of one model at one moment. Never changes once made."""

    name: str
    task: str
    window_rows: int
    window_max_rows: int
    reference_rows: int
    schedule_every: float
    min_rows: int
    last_arrival: float | None
    labels_pending: int
    labels_expired: int
    labels_received: int
    labels_matched: int
    durable: bool
    journal_bytes: int
    replayed_records: int
    corrupt_records: int
    invalid_records: int
    status: ModelStatus
    confirmation: ConfirmationState = field(default_factory=ConfirmationState)
    drift_share: float | None = 0.5  # the configured drift.share as the config says now; None: tested mode
    contract_violations: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (column, action)
    missing_codes: Mapping[str, int] = field(default_factory=dict)
    event_lag: tuple[list[tuple[str, float]], float] | None = None  # cumulative buckets, sum


class ModelState:
    """One monitored model: its config, window, waiting labels, reference, journal and results."""

    def __init__(
        self,
        config: ModelConfig,
        schema: RowSchema,
        reference: pd.DataFrame,
        journal: Journal,
        limiter: RowRateLimiter | None = None,
    ) -> None:
        self._config = config
        self.schema = schema
        self.journal = journal
        self._limiter = limiter
        kinds = {spec.name: spec.kind for spec in schema.columns}
        self._window = SlidingWindow(
            kinds,
            config.window.max_rows,
            config.window.max_age,
            id_column=config.columns.id,
            target_column=config.columns.target,
            age_by=config.window.age_by,
        )
        self._pending = PendingLabels(config.labels.pending_max, config.labels.pending_ttl)
        self._interner = CategoryInterner()
        self._contract_counts = ContractCounts()  # live rows and labels only, not replayed ones
        self._reference = reference.reset_index(drop=True)
        # Names this reference for the worker's cache; a new id whenever the reference changes.
        self._reference_id = uuid.uuid4().hex
        self._status = ModelStatus()
        # The confirmed drift state: carried from one calculation to the next, apart from the
        # status so that it can be stored on its own (confirmation.py: as_dict / from_dict).
        self._confirmation = ConfirmationState()
        self._labels_received = 0
        self._labels_matched = 0
        self._lock = asyncio.Lock()  # one calculation, report or reference swap at a time
        self._problems = ThrottledLog(log)
        # Cluster mode: the shared log feeds the window; `_position` is its last record replayed.
        self._shared = journal if isinstance(journal, SharedJournal) else None
        self._position = 0
        self._feed_lock = asyncio.Lock()  # one catch-up at a time: records are replayed once
        self._tallies: deque[LabelTally] = deque(maxlen=100_000)
        # Cluster mode: the event lag of the rows this monitor accepted (windows replay every row)
        self._accepted_lag = EventLag() if self._shared is not None and config.columns.timestamp else None

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> ModelConfig:
        return self._config

    @property
    def reference(self) -> pd.DataFrame:
        return self._reference

    @property
    def status(self) -> ModelStatus:
        return self._status

    @property
    def confirmation(self) -> ConfirmationState:
        return self._confirmation

    # -- rows and labels ----------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        """True in cluster mode: the window is fed from the shared log (`catch_up`), not by ingest."""
        return self._shared is not None

    async def ingest_body(
        self, source: RequestBody, limits: Limits, batch_id: str | None = None
    ) -> tuple[int, int | None]:
        """Decode and validate a request body of rows (any format), store it in the journal, then
        append it; return (rows accepted, window size).

        In cluster mode the validated batch is stored in the shared log as Arrow (once per
        `batch_id`) and not appended here: the window size is then unknown (None) until a
        `catch_up`. Raises the API's 4xx errors (nothing stored), RateLimited, or
        StorageUnavailable (nothing appended)."""
        now = time.time()
        batch = decode_rows(
            source.body, source.body_format, self.schema, now, limits, self._interner, self._contract_counts
        )
        self._take_rate(batch.rows)
        if self._shared is not None:
            record = Record("rows", now, JSON, encode_batch(batch), items=batch.rows, columnar=True)
            await self._store(record, batch_id)
            self._observe_accepted(batch, now)
            return batch.rows, None
        await self._journal("rows", now, source, batch.rows)
        return batch.rows, self._apply_rows(batch, now, live=True)

    async def ingest(self, rows: list[Any], body: RequestBody | None = None) -> int | None:
        """Validate rows given as Python objects (tests, embedding), store `body` when given, then
        append them; return the window size (None in cluster mode, where the batch is stored in
        the shared log as Arrow and reaches the window through `catch_up`)."""
        self._take_rate(len(rows))
        now = time.time()
        batch = validate_rows(rows, self.schema, now, self._interner, self._contract_counts)
        if self._shared is not None:
            await self._store(Record("rows", now, JSON, encode_batch(batch), items=batch.rows, columnar=True))
            self._observe_accepted(batch, now)
            return None
        await self._journal("rows", now, body, len(rows))
        return self._apply_rows(batch, now, live=True)

    def _observe_accepted(self, batch: Batch, now: float) -> None:
        """Cluster mode: the event lag of the rows this monitor accepted (its own counter)."""
        column = self._config.columns.timestamp
        if self._accepted_lag is not None and column and batch.rows:
            self._accepted_lag.observe(now - batch.columns[column])

    async def add_labels_body(
        self, source: RequestBody, limits: Limits, batch_id: str | None = None
    ) -> LabelsOutcome:
        """Decode a request body of labels (JSON or NDJSON, gzip or not), then `add_labels`."""
        self._require_label_columns()
        return await self.add_labels(labels_of(source.body, source.body_format, limits), source, batch_id)

    async def add_labels(
        self, items: list[Any], body: RequestBody | None = None, batch_id: str | None = None
    ) -> LabelsOutcome:
        """Join ground-truth labels to the window's rows by id; keep the others waiting for a while.
        In cluster mode they are only stored (once per `batch_id`, the body as received with its
        format byte): the join happens at replay."""
        target = self._require_label_columns()
        self._take_rate(len(items))
        ids, targets = validate_labels(items, self.schema, target, self._interner, self._contract_counts)
        now = time.time()
        if self._shared is not None:
            source = body or RequestBody(orjson.dumps({"labels": items}))
            record = Record("labels", now, source.body_format, source.body, items=len(ids))
            await self._store(record, batch_id)
            return LabelsOutcome(self.name, len(ids), None, None)
        await self._journal("labels", now, body, len(items))
        return self._apply_labels(ids, list(targets), now, live=True)

    def _require_label_columns(self) -> str:
        """The target column, or LabelsNotConfigured when labels cannot be joined."""
        columns = self._config.columns
        if not columns.id or not columns.target:
            raise LabelsNotConfigured(self.name)
        return columns.target

    def fields_per_item(self, kind: RecordKind) -> int:
        """Fields one row (or label) of a body holds at most: the budget of a body's parse."""
        return len(self.schema.columns) if kind == "rows" else 2

    def check_rate_debt(self) -> None:
        """429 before a body is read while rejected bodies keep the rate limit in debt."""
        if self._limiter is not None and (wait := self._limiter.debt_wait()):
            raise RateLimited(
                f"model {self.name!r} takes at most {self._limiter.rate:g} rows/s, "
                "counting rejected bodies by their size",
                wait,
            )

    def charge_rejected(self, kind: RecordKind, size: int, rows_taken: int) -> None:
        """A rejected body costs the rate limit the rows it could have carried: one per
        `_BYTES_PER_FIELD` bytes per field (a 20-column row of full-precision floats is about 500
        bytes of JSON), less the rows already taken."""
        if self._limiter is not None and size:
            rows = math.ceil(size / (_BYTES_PER_FIELD * self.fields_per_item(kind)))
            if rows > rows_taken:
                self._limiter.charge(rows - rows_taken)

    def _take_rate(self, count: int) -> None:
        if self._limiter is not None and (wait := self._limiter.try_take(count)):
            raise RateLimited(f"model {self.name!r} takes at most {self._limiter.rate:g} rows/s", wait, count)

    async def _journal(self, kind: RecordKind, now: float, body: RequestBody | None, items: int) -> None:
        if body is not None:
            await self._store(Record(kind, now, body.body_format, body.body, items=items))

    async def _store(self, record: Record, batch_id: str | None = None) -> None:
        try:
            await self.journal.append(record, batch_id)
        except StorageUnavailable as exc:
            exc.row_count = record.items
            self._problems.log(
                logging.WARNING,
                "storage",
                "model %s: %s refused: %s",
                self.name,
                record.kind,
                exc.detail or exc,
            )
            raise

    def _apply_rows(self, batch: Batch, now: float, *, live: bool) -> int:
        size = self._window.append(batch, now)
        id_column = self._config.columns.id
        if id_column and len(self._pending):
            ids, targets = self._pending.take(list(batch.columns[id_column]), now)
            if ids:
                self._window.apply_labels(ids, targets)
                self._labels_matched += len(ids) if live else 0
        return size

    def _apply_labels(self, ids: list[str], targets: list[Any], now: float, *, live: bool) -> LabelsOutcome:
        received = len(ids)
        ids, targets, duplicates = last_wins(ids, targets)  # an id repeated in one body counts once
        found = self._window.apply_labels(ids, targets)
        for row_id, target, matched in zip(ids, targets, found, strict=True):
            if not matched:
                self._pending.add(row_id, target, now)
        matched_count = sum(found)
        if live:
            self._labels_received += received
            self._labels_matched += matched_count
        return LabelsOutcome(self.name, received, matched_count, len(ids) - matched_count, duplicates)

    # -- recovery and storage -----------------------------------------------------------------

    def recover(self) -> None:
        """Rebuild the window from the journal's checkpoint and records, then start writing."""
        started = time.perf_counter()
        saved, records = self.journal.recover()
        if saved is not None:
            self._window.restore(saved.window)
            self._pending.restore(saved.pending, saved.expired)
        for record in records:
            self._replay(record)
        self.journal.open_new_segment()
        if self.journal.durable and self._shared is None:
            report = self.journal.report
            log.info(
                "model %s: recovered %d rows from %d log records in %.2f s "
                "(%d corrupt, %d no longer valid, skipped)",
                self.name,
                len(self._window),
                report.records,
                time.perf_counter() - started,
                report.corrupt,
                report.invalid,
            )

    def _replay(self, record: Record, *, live: bool = False) -> None:
        """Apply one stored record as it was applied when it arrived (`live`: count its labels)."""
        try:
            if record.kind == "rows":
                if record.columnar:  # cluster mode: the batch as validated by the accepting monitor
                    batch = decode_batch(record.body, self.schema, self._interner)
                else:
                    batch = decode_rows(
                        record.body, record.body_format, self.schema, record.arrived, interner=self._interner
                    )
                self._apply_rows(batch, record.arrived, live=live)
            else:
                target = self._require_label_columns()
                items = labels_of(record.body, record.body_format)
                ids, targets = validate_labels(items, self.schema, target, self._interner)
                self._apply_labels(ids, list(targets), record.arrived, live=live)
        except MonitorError as exc:  # the config changed since the record was written
            self.journal.report.invalid += 1
            log.error(
                "model %s: a logged %s record no longer validates and is skipped: %s",
                self.name,
                record.kind,
                exc,
            )

    async def catch_up(self) -> int:
        """Cluster mode: replay the shared log's records this monitor has not replayed yet into the
        window (after adopting a reference replaced by any monitor); return how many. A `reset`
        (first read, or records gone before this monitor saw them) rebuilds the window from the
        records the log still holds for it. No-op on one node. StorageUnavailable when the log does
        not answer (nothing half-applied: the next call goes on from the last record replayed)."""
        if self._shared is None:
            return 0
        async with self._feed_lock:
            reference = await self._shared.shared_reference()
            if reference is not None:
                self._adopt_shared_reference(reference)
            config = self._config
            read = await self._shared.read_since(
                self._position,
                now=time.time(),
                max_rows=config.window.max_rows,
                max_age=config.window.max_age,
                labels_lookback=config.labels.pending_ttl,
            )
            if read.reset:
                log.info(
                    "model %s: window rebuilt from the shared log (%d records, after position %d)",
                    self.name,
                    len(read.records),
                    self._position,
                )
                self._restart_window()
            for position, record in read.records:
                before = (self._labels_received, self._labels_matched, self._pending.expired)
                self._replay(record, live=True)
                after = (self._labels_received, self._labels_matched, self._pending.expired)
                if after != before:
                    changes = (a - b for a, b in zip(after, before, strict=True))
                    self._tallies.append(LabelTally(position, *changes))
                self._position = position
            self._position = max(self._position, read.position)
            return len(read.records)

    def _restart_window(self) -> None:
        config = self._config
        self._window = SlidingWindow(
            {spec.name: spec.kind for spec in self.schema.columns},
            config.window.max_rows,
            config.window.max_age,
            id_column=config.columns.id,
            target_column=config.columns.target,
            age_by=config.window.age_by,
        )
        expired = self._pending.expired
        self._pending = PendingLabels(config.labels.pending_max, config.labels.pending_ttl)
        self._pending.expired = expired
        self._position = 0

    def _adopt_shared_reference(self, frame: pd.DataFrame) -> None:
        frame, problems = checked(frame, self.schema)
        if problems:
            log.warning(
                "model %s: the cluster's shared reference no longer fits the columns (%s); keeping the "
                "current one",
                self.name,
                problems[0][1],
            )
            return
        self._use_reference(frame)

    @property
    def position(self) -> int:
        """Cluster mode: the last record of the shared log replayed into the window."""
        return self._position

    def label_tally(self, after: int) -> tuple[int, int, int]:
        """Cluster mode: labels received, matched and expired by the records replayed after
        position `after` (what this monitor adds to the cluster's label counters)."""
        received = matched = expired = 0
        for tally in self._tallies:
            if tally.position > after:
                received += tally.received
                matched += tally.matched
                expired += tally.expired
        return received, matched, expired

    def forget_tally(self, upto: int) -> None:
        """The cluster's counters cover everything up to `upto` now."""
        while self._tallies and self._tallies[0].position <= upto:
            self._tallies.popleft()

    def adopt_shared(self, status: ModelStatus, confirmation: ConfirmationState) -> None:
        """Cluster mode: the status and confirmed drift state the cluster holds (whoever calculated
        last) become this one's, before this monitor calculates and publishes the next."""
        self._status = status
        self._confirmation = confirmation

    async def trim_shared_log(self) -> None:
        """Cluster mode: after a calculation read the window, drop what no window needs any more."""
        if self._shared is not None:
            await self._shared.trim()

    def checkpoint(self) -> Checkpoint:
        """The window and the waiting labels as they are now."""
        return Checkpoint(self._window.copy(), self._pending.export(), self._pending.expired)

    async def maintain_storage(self) -> None:
        await self.journal.maintain(self.checkpoint)

    async def close(self) -> None:
        """Graceful stop: checkpoint the window when it has rows in log segments, then close."""
        if self.journal.needs_final_checkpoint:
            try:
                await self.journal.compact(self.checkpoint)
            except (OSError, MonitorError):
                log.exception("checkpoint of model %s at shutdown failed; its log is kept", self.name)
        self.journal.close()

    # -- calculations -------------------------------------------------------------------------

    def rows_due(self, now: float) -> bool:
        """Enough rows (after age eviction) for a scheduled calculation."""
        return self._window.evict_expired(now) >= self._config.schedule.min_rows

    def window_rows(self, now: float) -> WindowRows:
        """A copy of the window's rows for export: in arrival order, or event-time order when the
        window ages by event time."""
        return self._window.copy(now)

    def _rows_to_calculate(self) -> WindowRows:
        rows = self._window.copy(time.time())
        if not rows.rows:
            raise WindowEmpty(self.name)
        return rows

    async def calculate(self, worker: CalculationWorker, *, snapshot: bool = False) -> Calculated:
        """Run one calculation now and publish it; with `snapshot`, also build Evidently's snapshot of
        the same rows for the report store (a failure there keeps the result). On failure, log and
        count it and raise CalculationFailed."""
        async with self._lock:
            started = time.perf_counter()
            rows = self._rows_to_calculate()
            try:
                result = await worker.compute(self._config, self._reference_id, self._reference, rows.columns)
            except Exception as exc:
                log.error("calculation for model %s failed:\n%s", self.name, traceback.format_exc())
                message = f"{type(exc).__name__}: {exc}"
                self._status = self._status.failed(time.time(), message)
                raise CalculationFailed(f"calculation for model {self.name!r} failed: {message}") from exc
            result = replace(
                result,
                duration_seconds=time.perf_counter() - started,
                window_first_arrival=float(rows.arrival.min()),
                window_last_arrival=float(rows.arrival.max()),
            )
            for level, message in quality_changes(self._status.latest, result):
                log.log(level, message)  # a quality metric started or stopped being computed
            self._status = self._status.succeeded(result)
            self._confirmation = self._confirmation.update(
                result.observation(), self._config.drift.confirmation
            )
            text = await self._snapshot(worker, rows, result) if snapshot else None
            if self._config.moves_reference:  # legacy mode only
                current = pd.DataFrame(rows.columns)[list(self._reference.columns)]
                try:
                    await self._swap_reference(current)
                except StorageUnavailable:  # the result stands; the next calculation keeps the old one
                    log.exception("model %s: the moving reference could not be persisted", self.name)
            return Calculated(result, text)

    async def _snapshot(
        self, worker: CalculationWorker, rows: WindowRows, result: CalculationResult
    ) -> str | None:
        try:
            return await worker.snapshot(
                self._config, self._reference_id, self._reference, rows.columns, result
            )
        except Exception as exc:  # Evidently's plots refuse some data; the result stands without it
            self._problems.log(
                logging.WARNING,
                "snapshot",
                "model %s: no report stored: %s: %s",
                self.name,
                type(exc).__name__,
                exc,
            )
            return None

    # -- reference and configuration ----------------------------------------------------------

    async def replace_reference(self, frame: pd.DataFrame) -> bool:
        """Swap in a validated reference between calculations; True when it was persisted."""
        async with self._lock:
            await self._swap_reference(frame)
            return self.journal.durable

    async def _swap_reference(self, frame: pd.DataFrame) -> None:
        await self.persist_reference(frame)
        self._use_reference(frame)

    async def persist_reference(self, frame: pd.DataFrame) -> None:
        try:
            await asyncio.to_thread(self.journal.save_reference, frame)
        except OSError as exc:
            raise StorageUnavailable(
                "cannot persist the reference", detail=f"model {self.name}: {exc}"
            ) from exc

    def _use_reference(self, frame: pd.DataFrame) -> None:
        self._reference = frame.reset_index(drop=True)
        self._reference_id = uuid.uuid4().hex  # the worker's cached copy is now stale

    async def apply_config(self, config: ModelConfig, reference: pd.DataFrame | None) -> None:
        """Take a reloaded config (its reference already persisted), between calculations."""
        async with self._lock:
            self._config = config
            self._window.max_age = config.window.max_age
            self._pending.ttl = config.labels.pending_ttl
            self._pending.max_items = config.labels.pending_max
            if reference is not None:
                self._use_reference(reference)

    # -- reading ------------------------------------------------------------------------------

    def stats(self, now: float) -> ModelStats:
        self._pending.expire(now)
        report = self.journal.report
        violations, missing_codes = self._contract_counts.copy()
        # cluster mode: the rows this monitor accepted (its window replays every monitor's rows)
        event_lag = self._accepted_lag if self._shared is not None else self._window.event_lag
        lag = (event_lag.buckets(), event_lag.sum) if event_lag is not None else None
        return ModelStats(
            name=self.name,
            task=self._config.task,
            window_rows=self._window.evict_expired(now),
            window_max_rows=self._window.max_rows,
            reference_rows=len(self._reference),
            schedule_every=self._config.schedule.every,
            min_rows=self._config.schedule.min_rows,
            last_arrival=self._window.last_arrival,
            labels_pending=len(self._pending),
            labels_expired=self._pending.expired,
            labels_received=self._labels_received,
            labels_matched=self._labels_matched,
            durable=self.journal.durable,
            journal_bytes=self.journal.size,
            replayed_records=report.records,
            corrupt_records=report.corrupt,
            invalid_records=report.invalid,
            status=self._status,
            confirmation=self._confirmation,
            drift_share=self._config.drift.share if self._config.drift.mode == "legacy" else None,
            contract_violations=violations,
            missing_codes=missing_codes,
            event_lag=lag,
        )
