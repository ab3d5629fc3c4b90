"""Memory of the monitor's processes from /proc: the calculation worker's, and both processes' peaks.

prometheus-client's `process_resident_memory_bytes` covers the server process only, while the
calculation worker (a separate process with the default `server.executor: process`) holds Evidently,
a copy of every reference and, during a calculation, the window's frame: often more than the server.
Container limits apply to both together. Linux only (on other systems the families are absent).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

P = "drift_monitor_"


@dataclass(frozen=True)
class ProcessMemory:
    """Resident set size now and its high-water mark since the process started, in bytes."""

    resident_bytes: int
    peak_resident_bytes: int


def read_memory(pid: int | str = "self", parent: int | None = None) -> ProcessMemory | None:
    """Memory of a live process from /proc/<pid>/status.

    None when the process is gone or a zombie, or, with `parent`, when that pid now belongs to a
    process that is not `parent`'s child (the worker died and its pid was reused).
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    if fields.get("State", "").strip().startswith(("Z", "X")):
        return None
    if parent is not None and int(fields.get("PPid", "0")) != parent:
        return None
    return ProcessMemory(_kib(fields.get("VmRSS")), _kib(fields.get("VmHWM")))


def _kib(value: str | None) -> int:
    """`VmRSS:    1692 kB` -> bytes (the kernel's kB are KiB)."""
    if value is None:
        return 0
    number, _, unit = value.strip().partition(" ")
    return int(number) * (1024 if unit.strip() == "kB" else 1)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
# Above request-sized buffers (a 1,000-row JSON body is 0.5 MB; at 128 KiB every request paid an
# mmap, page faults and munmap: +25-30 % server CPU per request, bench/memory.py malloc), below the
# window-sized ones (a 1M-row column is 8 MB, the pickled window 130 MB).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


@functools.cache
def _libc_function(name: str) -> Any:
    """A glibc malloc function, or None (musl, macOS) or when DRIFT_MONITOR_MALLOC_TUNING=0 (benchmarks)."""
    if os.environ.get("DRIFT_MONITOR_MALLOC_TUNING", "1") == "0":
        return None
    try:
        return getattr(ctypes.CDLL(None), name, None)
    except OSError:
        return None


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold at 4 MiB, so large temporary arrays go back to the OS when freed.

    glibc starts at 128 KiB but raises the threshold to the size of every mmapped block freed (up to
    32 MiB): after one pickled window, all arrays below 32 MiB come from the heap arenas, whose freed
    space stays resident, so the server grew with each calculation. Setting it once turns that
    adjustment off. Process-wide; called once by create_app (the server process).
    """
    mallopt = _libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def trim_memory() -> bool:
    """Return freed heap memory to the OS (after loading references, after each calculation).

    glibc keeps freed memory of temporary buffers (the worker's frame, test intermediates) in its
    arenas, one per thread that allocated, and Arrow's memory pool keeps what reading a Parquet
    reference used (43 MB for 100k rows x 21 columns, measured); bench/memory.py sizing measures
    the effect. Takes a few milliseconds; False where glibc's malloc_trim is unavailable.
    """
    if _libc_function("malloc_trim") is None:
        return False
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    _libc_function("malloc_trim")(0)
    return True


class ProcessMemoryCollector(Collector):
    """`drift_monitor_worker_*` from the worker pids (None: thread executor, no worker process) and
    the server's peak RSS."""

    def __init__(self, worker_pids: Callable[[], list[int]] | None) -> None:
        self.worker_pids = worker_pids
        self.available = os.path.exists("/proc/self/status")

    def collect(self) -> Iterator[Metric]:
        if not self.available:
            return
        server = read_memory()
        if server is not None:
            yield GaugeMetricFamily(
                P + "server_peak_resident_memory_bytes",
                "Highest resident memory of the server process since it started (VmHWM); "
                "process_resident_memory_bytes is the value now.",
                value=server.peak_resident_bytes,
            )
        if self.worker_pids is None:
            return
        parent = os.getpid()
        workers = [m for pid in self.worker_pids() if (m := read_memory(pid, parent)) is not None]
        yield GaugeMetricFamily(
            P + "worker_up",
            "1 while the calculation worker process is alive; 0 before it starts or after it died "
            "(a new one starts with the next calculation).",
            value=1.0 if workers else 0.0,
        )
        if workers:
            yield GaugeMetricFamily(
                P + "worker_resident_memory_bytes",
                "Resident memory of the calculation worker process, which "
                "process_resident_memory_bytes (the server process) does not include.",
                value=sum(m.resident_bytes for m in workers),
            )
            yield GaugeMetricFamily(
                P + "worker_peak_resident_memory_bytes",
                "Highest resident memory of the calculation worker since it started (VmHWM), "
                "calculation peaks included; size the memory limit from it.",
                value=sum(m.peak_resident_bytes for m in workers),
            )
