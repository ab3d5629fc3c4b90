"""Worker and server memory read from /proc, and the collector over a real worker process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from monitor_service.config import ModelConfig
from monitor_service.process_memory import ProcessMemoryCollector, read_memory
from monitor_service.worker import CalculationWorker
from tests.conftest import diamonds_model
from tests.support.processes import poll_until

MB = 1_000_000
# Allocates and touches 64 MB, then waits: its RSS is known from the outside.
HOLDER = (
    "import time; b = bytearray(64_000_000); b[::4096] = b'x' * len(b[::4096]); "
    "print('ok', flush=True); time.sleep(60)"
)


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ok"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()


def test_read_memory_of_a_child_matches_what_it_allocated(holder: subprocess.Popen[str]) -> None:
    memory = read_memory(holder.pid, parent=os.getpid())
    assert memory is not None
    assert 64 * MB < memory.resident_bytes < 64 * MB + 40 * MB  # + the interpreter
    assert memory.peak_resident_bytes >= memory.resident_bytes


def test_read_memory_refuses_a_process_that_is_not_our_child(holder: subprocess.Popen[str]) -> None:
    assert read_memory(holder.pid, parent=holder.pid) is None  # its parent is us, not itself
    assert read_memory(os.getpid(), parent=os.getpid()) is None


def test_read_memory_of_a_dead_child_is_none(holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    # Not reaped yet: a zombie keeps its /proc entry and must not count as alive.
    poll_until(lambda: read_memory(holder.pid) is None, timeout=10, message="the child to be a zombie")
    holder.wait()
    assert read_memory(holder.pid) is None


def test_read_memory_of_self_has_a_peak() -> None:
    memory = read_memory()
    assert memory is not None and memory.peak_resident_bytes >= memory.resident_bytes > 10 * MB


def _value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


def test_collector_reports_the_real_worker_until_it_dies() -> None:
    worker = CalculationWorker("process")
    registry = CollectorRegistry()
    registry.register(ProcessMemoryCollector(worker.pids))
    try:
        assert _value(registry, "drift_monitor_worker_up") == 0  # not started yet
        assert _value(registry, "drift_monitor_worker_resident_memory_bytes") is None
        problems = asyncio.run(worker.check_settings([ModelConfig.model_validate(diamonds_model())]))
        assert problems == []
        [pid] = worker.pids()
        assert _value(registry, "drift_monitor_worker_up") == 1
        rss = _value(registry, "drift_monitor_worker_resident_memory_bytes")
        outside = read_memory(pid)
        assert rss is not None and outside is not None
        assert rss > 100 * MB  # Evidently, pandas and scipy are imported in the worker
        assert abs(rss - outside.resident_bytes) < 5 * MB
        peak = _value(registry, "drift_monitor_worker_peak_resident_memory_bytes")
        assert peak is not None and peak >= rss
        os.kill(pid, signal.SIGKILL)
        poll_until(
            lambda: _value(registry, "drift_monitor_worker_up") == 0, timeout=20, message="worker_up 0"
        )
        assert _value(registry, "drift_monitor_worker_resident_memory_bytes") is None
    finally:
        worker.close()


def test_collector_without_worker_process_exports_only_the_server_peak() -> None:
    registry = CollectorRegistry()
    registry.register(ProcessMemoryCollector(None))
    assert _value(registry, "drift_monitor_worker_up") is None
    peak = _value(registry, "drift_monitor_server_peak_resident_memory_bytes")
    assert peak is not None and peak > 10 * MB
