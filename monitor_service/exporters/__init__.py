"""Optional sinks of each stored calculation: Evidently UI (evidently_ui.py) and MLflow (mlflow.py).

Every exporter has the same shape, `push(model, result, snapshot)`: the calculation's result and
its Evidently snapshot JSON (reports.py). `ExportDispatcher` runs them off the calculation path
in one background thread behind a bounded queue: a slow or unreachable target never delays or
fails a calculation. Failures are counted, and logged once per change (the first failure, a
different error, the recovery), not once per push.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor_service.config import ExportersConfig, ModelConfig
from monitor_service.results import CalculationResult

log = logging.getLogger(__name__)


class Exporter(Protocol):
    """Sends one stored calculation somewhere. May block and raise: the dispatcher isolates it."""

    name: str

    def push(self, model: str, result: CalculationResult, snapshot: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class ExporterStats:
    """What one exporter did since start (read by the metrics collector)."""

    pushed: int = 0
    failed: int = 0
    dropped: int = 0
    last_success_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class _Job:
    model: str
    result: CalculationResult
    snapshot: str


_STOP = object()


class ExportDispatcher:
    """Feeds every exporter from a bounded queue in one daemon thread."""

    def __init__(self, exporters: Sequence[Exporter], queue_size: int = 16) -> None:
        self.exporters = list(exporters)
        self.stats = {e.name: ExporterStats() for e in self.exporters}
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.exporters and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="exporters", daemon=True)
            self._thread.start()

    def submit(self, model: str, result: CalculationResult, snapshot: str) -> bool:
        """Queue one stored calculation for every exporter; False (counted) when the queue is full."""
        if not self.exporters:
            return True
        self.start()
        with self._lock:
            try:
                self._queue.put_nowait(_Job(model, result, snapshot))
            except queue.Full:
                for stats in self.stats.values():
                    stats.dropped += 1
                log.warning(
                    "exporters are behind: the calculation of %s at %.0f is not exported",
                    model,
                    result.finished_at,
                )
                return False
            self._busy += 1
        return True

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued was pushed (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Push what is queued (for at most `timeout` seconds), then stop and close the exporters."""
        if self._thread is not None:
            self.drain(timeout)
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        for exporter in self.exporters:
            try:
                exporter.close()
            except Exception:
                log.exception("closing exporter %s failed", exporter.name)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            assert isinstance(job, _Job)
            try:
                for exporter in self.exporters:
                    self._push(exporter, job)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _push(self, exporter: Exporter, job: _Job) -> None:
        stats = self.stats[exporter.name]
        try:
            exporter.push(job.model, job.result, job.snapshot)
        except Exception as exc:  # whatever a target does, the monitor goes on
            message = f"{type(exc).__name__}: {exc}"
            with self._lock:
                stats.failed += 1
                changed, stats.last_error = message != stats.last_error, message
            if changed:
                log.error(
                    "exporter %s failed (model %s): %s", exporter.name, job.model, message, exc_info=True
                )
            return
        with self._lock:
            recovered = stats.last_error is not None
            stats.pushed += 1
            stats.last_success_at = time.time()
            stats.last_error = None
        if recovered:
            log.info("exporter %s works again", exporter.name)


def build_exporters(config: ExportersConfig, models: Sequence[ModelConfig]) -> list[Exporter]:
    """The exporters the config enables (their client libraries imported only then)."""
    exporters: list[Exporter] = []
    if config.evidently_ui is not None:
        from monitor_service.exporters.evidently_ui import EvidentlyUIExporter

        exporters.append(EvidentlyUIExporter(config.evidently_ui, models))
    if config.mlflow is not None:
        from monitor_service.exporters.mlflow import MlflowExporter

        exporters.append(MlflowExporter(config.mlflow))
    return exporters
