"""The monitor's domain core: per-model windows and references, ingestion and calculations. No HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import replace
from typing import Any

import pandas as pd

from monitor_service.bodies import decode_labels, decode_rows
from monitor_service.calculator import Calculator
from monitor_service.config import MonitorConfig
from monitor_service.errors import (
    CalculationFailed,
    CalculationNotPossible,
    ConfigError,
    MonitorError,
    RateLimited,
    ReloadNeedsRestart,
    ReportUnavailable,
    StorageUnavailable,
    UnknownModel,
)
from monitor_service.reference import load_reference
from monitor_service.results import CalculationResult, ResultStore
from monitor_service.runtime import LabelsOutcome, ModelRuntime, RequestBody, use_reference
from monitor_service.schema import Batch, validate_labels, validate_rows
from monitor_service.storage import ModelLog, Record, RecordKind
from monitor_service.telemetry import ServiceMetrics
from monitor_service.window import WindowSnapshot

log = logging.getLogger(__name__)


def _nonempty_snapshot(runtime: ModelRuntime) -> WindowSnapshot:
    """The window now, or CalculationNotPossible (409) when it holds no rows."""
    snapshot = runtime.window.snapshot(time.time())
    if not snapshot.rows:
        raise CalculationNotPossible(f"the window of model {runtime.name!r} holds no rows yet")
    return snapshot


class Monitor:
    """Ingests rows into windows and runs calculations, publishing results to the store."""

    def __init__(
        self,
        config: MonitorConfig,
        runtimes: dict[str, ModelRuntime],
        calculator: Calculator,
        metrics: ServiceMetrics,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.runtimes = runtimes
        self.calculator = calculator
        self.store = ResultStore(list(runtimes))
        self.ready = False

    def runtime(self, name: str) -> ModelRuntime:
        try:
            return self.runtimes[name]
        except KeyError:
            raise UnknownModel(name) from None

    def ingest(self, name: str, rows: list[Any], source: RequestBody | None = None) -> int:
        """Validate a batch, log it durably, then append it; return the window size.

        Raises ValidationFailed (nothing logged or appended) or StorageUnavailable (nothing appended).
        """
        runtime = self.runtime(name)
        self._take(runtime, len(rows))
        now = time.time()
        return self._append(runtime, validate_rows(rows, runtime.schema, now), now, source)

    def ingest_batch(self, name: str, batch: Batch, now: float, source: RequestBody | None = None) -> int:
        """Like `ingest` for a batch already decoded and validated (bodies.decode_rows) at `now`."""
        runtime = self.runtime(name)
        self._take(runtime, batch.rows)
        return self._append(runtime, batch, now, source)

    @staticmethod
    def _take(runtime: ModelRuntime, rows: int) -> None:
        if runtime.limiter is not None and (wait := runtime.limiter.try_take(rows)):
            raise RateLimited(
                f"model {runtime.name!r} takes at most {runtime.limiter.rate:g} rows/s", wait, rows
            )

    def _append(self, runtime: ModelRuntime, batch: Batch, now: float, source: RequestBody | None) -> int:
        self._log(runtime, "rows", now, source)
        return self._apply_rows(runtime, batch, now)

    def add_labels(self, name: str, items: list[Any], source: RequestBody | None = None) -> LabelsOutcome:
        """Join ground-truth labels to the window's rows by id; keep the others pending for a while."""
        runtime = self.runtime(name)
        columns = runtime.config.columns
        if not columns.id or not columns.target:
            raise CalculationNotPossible(
                f"model {name!r} declares no id and target columns to join labels on"
            )
        ids, targets = validate_labels(items, runtime.schema, columns.target)
        now = time.time()
        self._log(runtime, "labels", now, source)
        return self._apply_labels(runtime, ids, list(targets), now)

    def _log(self, runtime: ModelRuntime, kind: RecordKind, now: float, source: RequestBody | None) -> None:
        if runtime.log is not None and source is not None:
            runtime.log.append(Record(kind, now, source.body_format, source.body))

    def _apply_rows(self, runtime: ModelRuntime, batch: Batch, now: float) -> int:
        size = runtime.window.append(batch, now)
        id_column = runtime.config.columns.id
        if id_column and len(runtime.pending_labels):
            ids, targets = runtime.pending_labels.take(list(batch.columns[id_column]), now)
            if ids:
                runtime.window.apply_labels(ids, targets)
                self.metrics.labels_matched.labels(runtime.name).inc(len(ids))
        return size

    def _apply_labels(
        self, runtime: ModelRuntime, ids: list[str], targets: list[Any], now: float
    ) -> LabelsOutcome:
        found = runtime.window.apply_labels(ids, targets)
        for row_id, target, matched in zip(ids, targets, found, strict=True):
            if not matched:
                runtime.pending_labels.add(row_id, target, now)
        matched_count = sum(found)
        self.metrics.labels_received.labels(runtime.name).inc(len(ids))
        self.metrics.labels_matched.labels(runtime.name).inc(matched_count)
        return LabelsOutcome(runtime.name, len(ids), matched_count, len(ids) - matched_count)

    def recover(self) -> None:
        """Rebuild every window from its snapshot and log, then start a fresh log segment."""
        for runtime in self.runtimes.values():
            if runtime.log is None:
                continue
            started = time.perf_counter()
            state, records, report = runtime.log.recover()
            runtime.replay = report  # _replay counts records that no longer validate into it
            if state is not None:
                runtime.window.restore(state["window"])
                runtime.pending_labels.restore(state["pending"], state["expired"])
            for record in records:
                self._replay(runtime, record)
            runtime.log.open_new_segment()
            log.info(
                "model %s: recovered %d rows from %d log records in %.2f s (%d corrupt record(s) skipped)",
                runtime.name,
                len(runtime.window),
                report.records,
                time.perf_counter() - started,
                report.corrupt,
            )

    def _replay(self, runtime: ModelRuntime, record: Record) -> None:
        try:
            if record.kind == "rows":
                batch = decode_rows(record.body, record.body_format, runtime.schema, record.arrived)
                self._apply_rows(runtime, batch, record.arrived)
            else:
                target = runtime.config.columns.target
                if not target or not runtime.config.columns.id:
                    raise CalculationNotPossible("the model no longer has id and target columns")
                ids, targets = decode_labels(record.body, record.body_format, runtime.schema, target)
                self._apply_labels(runtime, ids, list(targets), record.arrived)
        except MonitorError as exc:  # the config changed since the record was written
            runtime.replay.corrupt += 1
            log.error(
                "model %s: a logged %s record no longer validates and is skipped: %s",
                runtime.name,
                record.kind,
                exc,
            )

    async def compact(self, name: str) -> None:
        """Snapshot the window and delete the log segments it covers (the file work in a thread).

        Compactions of a model never overlap, and cancelling a caller does not cancel one that is
        writing: shutdown waits for it, then compacts what came after.
        """
        runtime = self.runtime(name)
        if runtime.log is None:
            return
        while runtime.compaction is not None and not runtime.compaction.done():
            await asyncio.shield(runtime.compaction)
        runtime.compaction = asyncio.create_task(self._compact(runtime, runtime.log))
        await asyncio.shield(runtime.compaction)

    async def _compact(self, runtime: ModelRuntime, model_log: ModelLog) -> None:
        next_segment = model_log.open_new_segment()
        state = {
            "window": runtime.window.snapshot(),
            "pending": runtime.pending_labels.export(),
            "expired": runtime.pending_labels.expired,
        }
        await asyncio.to_thread(model_log.write_snapshot, state, next_segment)

    async def start(self) -> None:
        """Recover the windows from their logs, start the worker; ready after both."""
        self.recover()
        problems = await self.calculator.warm_up(self.config.models)
        if problems:
            raise ConfigError("drift settings", problems)
        self.ready = True

    async def calculate(self, name: str) -> CalculationResult:
        """Run one calculation now; on failure, log and count it and re-raise."""
        runtime = self.runtime(name)
        async with runtime.lock:
            started = time.perf_counter()
            snapshot = _nonempty_snapshot(runtime)
            try:
                result = await self.calculator.compute(
                    runtime.config, runtime.reference_version, runtime.reference, snapshot.columns
                )
            except Exception as exc:
                log.error("calculation for model %s failed:\n%s", name, traceback.format_exc())
                message = f"{type(exc).__name__}: {exc}"
                self.store.record_failure(name, time.time(), message)
                raise CalculationFailed(f"calculation for model {name!r} failed: {message}") from exc
            finally:
                self.metrics.calculation_duration.labels(name).observe(time.perf_counter() - started)
            result = replace(result, duration_seconds=time.perf_counter() - started)
            self.store.record_success(result)
            if runtime.config.moving_reference:
                current = pd.DataFrame(snapshot.columns)
                try:
                    await self._swap_reference(runtime, current[list(runtime.reference.columns)])
                except StorageUnavailable:  # the result stands; the next calculation keeps the old reference
                    log.exception("model %s: the moving reference could not be persisted", name)
            return result

    async def replace_reference(self, name: str, frame: pd.DataFrame) -> bool:
        """Swap in a validated reference (between calculations); persist it when storage is on."""
        runtime = self.runtime(name)
        async with runtime.lock:
            return await self._swap_reference(runtime, frame)

    async def _swap_reference(self, runtime: ModelRuntime, frame: pd.DataFrame) -> bool:
        await self._persist_reference(runtime, frame)
        use_reference(runtime, frame)
        return runtime.log is not None

    @staticmethod
    async def _persist_reference(runtime: ModelRuntime, frame: pd.DataFrame) -> None:
        if runtime.log is None:
            return
        try:
            await asyncio.to_thread(runtime.log.save_reference, frame)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot persist the reference of model {runtime.name!r}: {exc}"
            ) from exc

    async def report_html(self, name: str) -> str:
        """Evidently's HTML report of the current window against the reference."""
        runtime = self.runtime(name)
        async with runtime.lock:
            snapshot = _nonempty_snapshot(runtime)
            try:
                return await self.calculator.report_html(
                    runtime.config, runtime.reference_version, runtime.reference, snapshot.columns
                )
            except Exception as exc:  # Evidently's plots refuse some data (e.g. ranges near 1e308)
                log.warning("HTML report of model %s failed: %s: %s", name, type(exc).__name__, exc)
                raise ReportUnavailable(
                    f"Evidently cannot render a report of this window: {type(exc).__name__}: {exc}"
                ) from exc

    async def reload(self, new: MonitorConfig) -> list[str]:
        """Apply a changed config to the running models and return the names changed.

        Drift settings, schedule, metrics, labels, moving reference, window max_age and the
        reference file apply at once. Models added or removed, changed columns or window size, and
        any change to `server` or `storage` need a restart: then nothing is applied (409).
        """
        needs_restart = []
        if [m.name for m in new.models] != list(self.runtimes):
            needs_restart.append("the list of models")
        if new.server != self.config.server or new.storage != self.config.storage:
            needs_restart.append("server or storage settings")
        for model in new.models:
            runtime = self.runtimes.get(model.name)
            if runtime and (
                model.columns != runtime.config.columns
                or model.window.max_rows != runtime.config.window.max_rows
            ):
                needs_restart.append(f"columns or window.max_rows of model {model.name!r}")
        if needs_restart:
            raise ReloadNeedsRestart("a restart is needed to change " + "; ".join(needs_restart))
        problems = await self.calculator.warm_up(new.models)
        references = {}
        for index, model in enumerate(new.models):
            runtime = self.runtimes[model.name]
            if model.reference != runtime.config.reference:
                try:
                    references[model.name] = load_reference(
                        model, runtime.schema, f"models[{index}].reference"
                    )
                except ConfigError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise ConfigError("reloaded config", problems)
        for name, frame in references.items():  # every file written before anything is applied
            await self._persist_reference(self.runtimes[name], frame)
        changed = []
        for model in new.models:
            runtime = self.runtimes[model.name]
            if model == runtime.config:
                continue
            async with runtime.lock:
                runtime.config = model
                runtime.window.max_age = model.window.max_age
                runtime.pending_labels.ttl = model.labels.pending_ttl
                runtime.pending_labels.max_items = model.labels.pending_max
                if model.name in references:
                    use_reference(runtime, references[model.name])
            changed.append(model.name)
        self.config = new
        log.info("configuration reloaded; models changed: %s", ", ".join(changed) or "none")
        return changed

    async def shutdown(self) -> None:
        """Graceful stop: snapshot every logged window (a fast next start), then close everything."""
        for runtime in self.runtimes.values():
            # Also when only older segments hold rows (a restart without new traffic), so the next
            # start reads a snapshot instead of replaying them all again.
            if runtime.log is not None and (runtime.log.size or len(runtime.log.segments()) > 1):
                try:
                    await self.compact(runtime.name)
                except (OSError, MonitorError):
                    log.exception("snapshot of model %s at shutdown failed; its log is kept", runtime.name)
        self.close()

    def close(self) -> None:
        """Stop the worker and close the logs (fsynced)."""
        self.calculator.close()
        for runtime in self.runtimes.values():
            if runtime.log is not None:
                runtime.log.close()
