"""`ClusterMember`: what one monitor does as a member of a cluster, besides accepting batches.

- **Ticks.** Every member publishes each model's schedule slots as tasks, `<model>:<every>:<tick>`;
  JetStream stores each once, however many members publish it (jetstream_tasks.py).
- **Work.** Every member pulls tasks from the one durable consumer. For a task it reads the model's
  entry (`result.<model>`, entry.py) with its revision, skips a slot at or before the last one
  handled (a tick published again by a member paused past the duplicate window), replays what is
  new in the model's stream into its window (`ModelState.catch_up`), calculates when the window
  holds `min_rows`, writes the next entry with compare-and-set, trims the stream, and acknowledges.
  It keeps the task alive while it works; a member that dies leaves the task to be redelivered.
- **Manual calculations** (`POST .../calculate`) run on the member asked, the same way, and return
  the result; the slot handled stays as it was.
- **Metrics.** `stats()` builds every model's `ModelStats` from a local mirror of the bucket, so any
  member serves `/metrics` and `/v1/models` for every model without touching the network.
- **Reports.** The member that calculates stores the report in the files bucket; every member
  follows the bucket (cluster/reports.py), so any of them lists and serves every stored report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from monitor_service.cluster.entry import ModelEntry, Outcome, next_entry, unchanged
from monitor_service.cluster.reports import ReportMirror
from monitor_service.config import ClusterConfig, ModelConfig
from monitor_service.confirmation import ConfirmationSettings
from monitor_service.errors import CalculationFailed, StorageUnavailable, UnknownModel, WindowEmpty
from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster, JournalStats
from monitor_service.journal.jetstream_journal import ClusterNotConnected, JetStreamConnection
from monitor_service.journal.jetstream_objects import FilesWatch, SharedFiles
from monitor_service.journal.jetstream_state import (
    StateConflict,
    StateEntry,
    StateMirror,
    StateStore,
    result_key,
)
from monitor_service.journal.jetstream_tasks import Task, TaskQueue, tick_of
from monitor_service.log_throttle import ThrottledLog
from monitor_service.model_state import ModelState, ModelStats
from monitor_service.reports import ReportStore
from monitor_service.results import CalculationResult, ModelStatus

log = logging.getLogger(__name__)

Calculate = Callable[[str, bool], Awaitable[CalculationResult]]  # (model, keep_report)
_CAS_ATTEMPTS = 8
_SET_UP_PATIENCE = 60.0  # seconds a starting member keeps trying to set up streams and buckets


def member_name(config: ClusterConfig) -> str:
    return config.name or f"{socket.gethostname()}:{os.getpid()}"


class ClusterMember:
    """One monitor's part in the cluster: connection, ticks, tasks, shared entries, mirror."""

    def __init__(
        self,
        config: ClusterConfig,
        models: Mapping[str, ModelState],
        connection: JetStreamConnection,
        calculate: Calculate,
        reports: Mapping[str, ReportStore] | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.connection = connection
        self.name = member_name(config)
        self._calculate = calculate
        self.report_mirror = ReportMirror(reports or {})
        self._files_watch: FilesWatch | None = None
        self._tasks: TaskQueue | None = None
        self._store: StateStore | None = None
        self._mirror: StateMirror | None = None
        self._decoded: dict[str, tuple[int, ModelStats]] = {}
        self._problems = ThrottledLog(log)
        # outcomes: calculated; skipped (too few rows); duplicate (a slot handled already: a tick
        # published twice); late (pulled after its slot ended: the next slot's task covers it, so a
        # backlog never turns into calculations of the same window); superseded (a later slot was
        # written meanwhile); failed (the calculation failed: counted in the model's status too);
        # given_back (the cluster failed midway: nak, redelivered)
        self.tasks_done: dict[str, int] = dict.fromkeys(
            ("calculated", "skipped", "duplicate", "late", "superseded", "failed", "given_back"), 0
        )

    # -- start and stop -----------------------------------------------------------------------

    async def start(self, models: Sequence[ModelConfig]) -> None:
        """Connect, make sure every stream, the task queue and the buckets exist, load the mirror."""
        cluster = await JetStreamCluster.connect(self.config, name=self.name)
        try:
            files = await self._set_up(cluster, models)
        except BaseException:
            await cluster.close()
            raise
        self.connection.attach(cluster, files)
        log.info("cluster member %s: %d models, mirror loaded", self.name, len(models))

    async def _set_up(self, cluster: JetStreamCluster, models: Sequence[ModelConfig]) -> SharedFiles:
        """Every stream, the task queue and the buckets (each step idempotent), then the mirror.
        Retried as a whole for a while: a cluster that just started (or is electing its meta
        leader) can time out creating them; ClusterUnavailable after `_SET_UP_PATIENCE`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self.config.publish_timeout, _SET_UP_PATIENCE)
        while True:
            try:
                await cluster.ensure_models(models)
                files = await SharedFiles.open(cluster)
                self._tasks = TaskQueue(cluster)
                await self._tasks.ensure()
                self._store = await StateStore.open(cluster)
                if self._mirror is not None:  # a set-up tried again
                    await self._mirror.close()
                self._mirror = await self._store.mirror()
                self._files_watch = await files.watch(self.report_mirror)
                return files
            except ClusterUnavailable as exc:
                if loop.time() + 1.0 >= deadline:
                    raise
                log.warning("cluster member %s: setting up the cluster failed (%s); retrying", self.name, exc)
                await asyncio.sleep(1.0)

    async def reconfigure(self, models: Sequence[ModelConfig]) -> None:
        """Apply changed window limits to the streams (after a reload)."""
        await self.connection.cluster.ensure_models(models)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop the mirror and close the connection; bounded, so a stop never waits for an
        unreachable cluster."""
        try:
            await asyncio.wait_for(self._close(), timeout)
        except TimeoutError:
            log.warning("the NATS connection did not close within %g s", timeout)

    async def _close(self) -> None:
        if self._files_watch is not None:
            await self._files_watch.stop()
        if self._mirror is not None:
            await self._mirror.close()
        with contextlib.suppress(ClusterUnavailable, ClusterNotConnected):
            await self.connection.cluster.close()

    @property
    def connected(self) -> bool:
        try:
            return self.connection.cluster.connected
        except ClusterNotConnected:
            return False

    def journal_stats(self) -> JournalStats:
        try:
            return self.connection.cluster.stats
        except ClusterNotConnected:
            return JournalStats()

    # -- what every member serves ---------------------------------------------------------------

    def stats(self) -> list[ModelStats]:
        return [self.stats_of(name) for name in self.models]

    def stats_of(self, name: str) -> ModelStats:
        """The model's view from the mirror (the last entry written by any member), with this
        member's own counters of what it accepted (contract violations, missing codes, event lag:
        per-instance counters, summed over instances by the queries)."""
        state = self.models.get(name)
        if state is None:
            raise UnknownModel(name)
        shared = self._shared_stats(name, state)
        own = state.stats(time.time())
        return replace(
            shared,
            contract_violations=own.contract_violations,
            missing_codes=own.missing_codes,
            event_lag=own.event_lag,
        )

    def _shared_stats(self, name: str, state: ModelState) -> ModelStats:
        found = self._mirror.get(result_key(name)) if self._mirror is not None else None
        if found is None:
            return ModelEntry(reference_rows=len(state.reference)).stats(state.config)
        cached = self._decoded.get(name)
        if cached is not None and cached[0] == found.revision:
            return cached[1]
        try:
            stats = ModelEntry.decode(found.value).stats(state.config)
        except ValueError as exc:
            self._problems.log(logging.ERROR, f"decode-{name}", "model %s: unreadable entry: %s", name, exc)
            return ModelEntry(reference_rows=len(state.reference)).stats(state.config)
        self._decoded[name] = (found.revision, stats)
        return stats

    # -- ticks ----------------------------------------------------------------------------------

    async def publish_ticks(self) -> None:
        """For ever: publish each model's current slot now, then each next slot as it starts."""
        queue = self._queue()
        published: dict[str, int] = {}
        while True:
            now = time.time()
            for name, state in self.models.items():
                every = state.config.schedule.every
                tick = tick_of(every, now)
                if published.get(name) == tick:
                    continue
                try:
                    await queue.publish_tick(name, every, now)
                    published[name] = tick
                    self._problems.resolved("ticks", "publishing schedule ticks works again")
                except StorageUnavailable as exc:
                    self._problems.log(
                        logging.WARNING, "ticks", "cannot publish the tick of %s: %s", name, exc
                    )
                except Exception:  # this loop schedules every model: it must outlive a bug
                    self._problems.log(
                        logging.ERROR, "ticks-bug", "publishing the tick of %s failed", name, exc_info=True
                    )
            now = time.time()
            wait = min(
                ((tick_of(s.config.schedule.every, now) + 1) * s.config.schedule.every - now)
                for s in self.models.values()
            )
            # members wake a few ms apart, whatever their start: the first to publish a slot wins
            await asyncio.sleep(max(0.05, wait) + random.uniform(0.0, 0.05))

    # -- tasks ----------------------------------------------------------------------------------

    async def work(self) -> None:
        """For ever: take a task, do it, acknowledge it."""
        queue = self._queue()
        while True:
            try:
                tasks = await queue.pull(batch=1, timeout=5.0)
            except ClusterUnavailable as exc:
                self._problems.log(logging.WARNING, "pull", "cannot pull tasks: %s", exc.detail or exc)
                await asyncio.sleep(1.0)
                continue
            for task in tasks:
                try:
                    await self.handle(task)
                except Exception:  # this loop calculates every model: it must outlive a bug
                    log.exception("task %s:%d failed unexpectedly; given back", task.model, task.tick)
                    with contextlib.suppress(Exception):
                        await task.nak(delay=5.0)

    async def handle(self, task: Task) -> str:
        """Do one task and acknowledge it; give it back (nak) when the cluster failed us midway."""
        state = self.models.get(task.model)
        if state is None:
            log.error("task for model %r, which this monitor does not know: dropped", task.model)
            await task.ack()
            return "unknown"
        log.info("task %s:%d (delivery %d) started", task.model, task.tick, task.deliveries)
        try:
            async with task.kept_alive(max(0.2, self.config.task_ack_wait / 3)):
                outcome = await self._run(state, task)
        except asyncio.CancelledError:  # stopping: let another member have it now, not after ack_wait
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task.nak(), 1.0)
            raise
        except (StorageUnavailable, StateConflict) as exc:
            self._problems.log(
                logging.WARNING, f"task-{task.model}", "task %s:%d given back: %s", task.model, task.tick, exc
            )
            with contextlib.suppress(Exception):
                await task.nak(delay=1.0)
            outcome = "given_back"
        self.tasks_done[outcome] = self.tasks_done.get(outcome, 0) + 1
        # said before the ack: a task seen started and not finished in the log was never acknowledged
        log.info("task %s:%d (delivery %d) %s", task.model, task.tick, task.deliveries, outcome)
        if outcome != "given_back":
            try:
                await task.ack()
            except StorageUnavailable as exc:  # redelivered, then skipped: its slot is handled
                log.warning("task %s:%d: the ack was not confirmed (%s)", task.model, task.tick, exc)
        return outcome

    async def _run(self, state: ModelState, task: Task) -> str:
        if time.time() >= task.due + task.every:
            return "late"  # its slot is over: the next slot's task (published already) covers it
        entry, base = await self._read(state.name)
        if _handled(base, task.due):
            return "duplicate"  # a slot handled already: a tick published twice
        await state.catch_up()
        _adopt(state, base)
        outcome: Outcome = unchanged
        result = "skipped"
        if state.rows_due(time.time()):
            outcome, result = await self._calculate_outcome(state)
        written = await self._write(
            state, entry, base, outcome, due=task.due, deliveries=task.deliveries, newer_wins=True
        )
        try:
            await state.trim_shared_log()
        except StorageUnavailable as exc:  # the next task trims; nothing is lost
            log.warning("model %s: trim failed: %s", state.name, exc.detail or exc)
        return result if written else "superseded"

    async def calculate_now(self, name: str, keep_report: bool = False) -> CalculationResult:
        """A calculation asked for through the API: here, now, written with compare-and-set."""
        state = self.models.get(name)
        if state is None:
            raise UnknownModel(name)
        entry, base = await self._read(name)
        await state.catch_up()
        _adopt(state, base)
        try:
            calculated = await self._calculate(name, keep_report)
        except CalculationFailed:
            await self._write(state, entry, base, _failed(state.status))
            raise
        await self._write(state, entry, base, _succeeded(calculated, state.config.drift.confirmation))
        return calculated

    async def _calculate_outcome(self, state: ModelState) -> tuple[Outcome, str]:
        try:
            calculated = await self._calculate(state.name, False)
        except CalculationFailed:
            return _failed(state.status), "failed"
        except WindowEmpty:  # the rows aged out between the check and the calculation
            return unchanged, "skipped"
        return _succeeded(calculated, state.config.drift.confirmation), "calculated"

    # -- the shared entry ----------------------------------------------------------------------

    async def _read(self, name: str) -> tuple[StateEntry | None, ModelEntry | None]:
        found = await self._state().get(result_key(name))
        if found is None:
            return None, None
        try:
            return found, ModelEntry.decode(found.value)
        except ValueError as exc:
            log.error("model %s: unreadable entry (%s): replaced by the next write", name, exc)
            return found, None

    async def _write(
        self,
        state: ModelState,
        entry: StateEntry | None,
        base: ModelEntry | None,
        outcome: Outcome,
        *,
        due: float | None = None,
        deliveries: int = 0,
        newer_wins: bool = False,
    ) -> bool:
        """Write the next entry with compare-and-set; on a lost race, read again and rebase the
        outcome on the winner's entry. False when a newer slot was written meanwhile (`newer_wins`)."""
        store = self._state()
        key = result_key(state.name)
        for _ in range(_CAS_ATTEMPTS):
            if newer_wins and _handled(base, due):
                return False
            value = next_entry(
                base, state, outcome, now=time.time(), by=self.name, due=due, deliveries=deliveries
            ).encode()
            try:
                if entry is None:
                    await store.create(key, value)
                else:
                    await store.update(key, value, last=entry.revision)
            except StateConflict:
                entry, base = await self._read(state.name)
                continue
            state.forget_tally(max(base.position if base else 0, state.position))
            return True
        raise StateConflict(key, entry.revision if entry else 0)

    # -- helpers --------------------------------------------------------------------------------

    def _queue(self) -> TaskQueue:
        if self._tasks is None:
            raise ClusterUnavailable("the cluster member has not started")
        return self._tasks

    def _state(self) -> StateStore:
        if self._store is None:
            raise ClusterUnavailable("the cluster member has not started")
        return self._store


def _handled(base: ModelEntry | None, due: float | None) -> bool:
    """The entry shows this slot, or a later one, handled already."""
    return due is not None and base is not None and base.due is not None and base.due >= due


def _adopt(state: ModelState, base: ModelEntry | None) -> None:
    """The status and confirmed state the cluster holds become the member's, before it calculates."""
    base = base or ModelEntry()
    state.adopt_shared(base.status, base.confirmation)


def _succeeded(result: CalculationResult, settings: ConfirmationSettings) -> Outcome:
    """A calculation's outcome: applied to the entry it is written on (the one read, or the winner's
    after a lost compare-and-set), it counts the calculation and advances the confirmed state once."""
    return lambda status, confirmation: (
        status.succeeded(result),
        confirmation.update(result.observation(), settings),
    )


def _failed(after: ModelStatus) -> Outcome:
    at, error = after.last_attempt_at or time.time(), after.last_error or "calculation failed"
    return lambda status, confirmation: (status.failed(at, error), confirmation)
