"""ExportDispatcher: exporters run off the calculation path, failures are isolated and counted."""

from __future__ import annotations

import threading
import time

import pytest

from monitor_service.config import ExportersConfig
from monitor_service.exporters import ExportDispatcher, build_exporters
from monitor_service.results import CalculationResult


def _result(at: float = 1_764_450_000.0) -> CalculationResult:
    return CalculationResult("diamonds", at, 0.1, 100, 1000, 0.5, False, 0, 9)


class _Recorder:
    """Records pushes; blocks while `gate` is closed; fails while `failing` is set."""

    name = "recorder"

    def __init__(self) -> None:
        self.pushed: list[tuple[str, float, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.failing: str | None = None
        self.closed = False

    def push(self, model: str, result: CalculationResult, snapshot: str) -> None:
        self.gate.wait(30)
        if self.failing:
            raise RuntimeError(self.failing)
        self.pushed.append((model, result.finished_at, snapshot))

    def close(self) -> None:
        self.closed = True


def test_dispatcher_pushes_in_order_without_blocking_the_caller() -> None:
    recorder = _Recorder()
    recorder.gate.clear()  # a target that hangs
    dispatcher = ExportDispatcher([recorder], queue_size=4)
    started = time.perf_counter()
    for i in range(3):
        assert dispatcher.submit("diamonds", _result(i), f"snapshot {i}")
    assert time.perf_counter() - started < 1.0  # submit never waits for the target
    assert not dispatcher.drain(0.2)
    recorder.gate.set()
    assert dispatcher.drain(10)
    assert recorder.pushed == [("diamonds", float(i), f"snapshot {i}") for i in range(3)]
    assert dispatcher.stats["recorder"].pushed == 3
    dispatcher.close()
    assert recorder.closed


def test_dispatcher_drops_and_counts_when_the_queue_is_full() -> None:
    recorder = _Recorder()
    recorder.gate.clear()
    dispatcher = ExportDispatcher([recorder], queue_size=2)
    accepted = [dispatcher.submit("diamonds", _result(i), "s") for i in range(6)]
    # one may be taken by the thread already; the queue holds two more
    assert accepted.count(False) >= 3
    assert dispatcher.stats["recorder"].dropped == accepted.count(False)
    recorder.gate.set()
    assert dispatcher.drain(10)
    assert len(recorder.pushed) == accepted.count(True)
    dispatcher.close()


def test_dispatcher_logs_a_failure_once_per_change_and_the_recovery(caplog: pytest.LogCaptureFixture) -> None:
    recorder = _Recorder()
    dispatcher = ExportDispatcher([recorder])
    with caplog.at_level("INFO", logger="monitor_service.exporters"):
        recorder.failing = "down"
        for _ in range(3):
            dispatcher.submit("diamonds", _result(), "s")
        assert dispatcher.drain(10)
        recorder.failing = "still down, differently"
        dispatcher.submit("diamonds", _result(), "s")
        assert dispatcher.drain(10)
        recorder.failing = None
        dispatcher.submit("diamonds", _result(), "s")
        assert dispatcher.drain(10)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "failed" in m]) == 2
    assert len([m for m in messages if "works again" in m]) == 1
    stats = dispatcher.stats["recorder"]
    assert (stats.failed, stats.pushed, stats.last_error) == (4, 1, None)
    dispatcher.close()


def test_no_exporters_configured_means_nothing_runs() -> None:
    dispatcher = ExportDispatcher(build_exporters(ExportersConfig(), []))
    assert dispatcher.exporters == []
    assert dispatcher.submit("diamonds", _result(), "s")
    assert dispatcher.drain(0.1)
    dispatcher.close()
