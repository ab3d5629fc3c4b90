"""Ingest throughput and latency of the real server, idle and while calculations run, per executor.

Starts one real server per executor kind (`python -m monitor_service serve`, `server.executor:
process` and `thread`) on free loopback ports, both up for the whole run, with a 20-column model
(15 numerical, 5 categorical; a 100k-row Parquet reference) whose window holds 100k rows
(prefilled, so every measured append also evicts, as in steady state). Then, for each load

  idle   nothing else runs
  calc   a thread calls POST /v1/models/bench/calculate back to back (a calculation on the full
         100k-row window against the 100k-row reference is always running or being set up)

it measures, alternating the two servers phase by phase and repeating the whole matrix --rounds
times (the machine is noisy; it prints each round, the medians, and for each phase the round in
which other processes used the least CPU):

  rows/s and requests/s with 1-, 100- and 1,000-row batches over --connections keep-alive
  connections (closed loop: each connection sends its next request when the answer arrived), and
  p50/p99/max latency of 1,000-row batches over one connection (one request in flight, so the
  latency is the server's, not queueing behind the bench's own requests).

The client is an asyncio protocol in this process (on uvloop when it is installed, else on the
standard loop; the script prints which) writing pre-serialised requests and reading answers by
Content-Length, so it costs little: its CPU time per phase is printed next to the server's (both
share the machine's cores). Bodies are JSON `{"rows": [...]}` with full float64
precision (about 0.5 KB per row).

Finally it prints an in-process breakdown of the handler's own stages (orjson parse,
schema.validate_rows, window.append) per 1- and 1,000-row request next to the server's time per
request, and profiles the first server (process executor) with py-spy when available (`pip install
py-spy`, or --py-spy PATH): 1-row and 1,000-row batches idle, 1,000-row batches under calc.

    python bench/ingest.py [--duration 2.5] [--rounds 2] [--connections 8] [--executors process,thread]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import http.client
import importlib.util
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd
import yaml
from common import MODEL, children, cpu_seconds, frame, model_config, records, rss_mb

from monitor_service.child_processes import free_port
from monitor_service.config import load_config
from monitor_service.schema import Batch, ColumnKind, validate_rows
from monitor_service.service import load_models
from monitor_service.window import SlidingWindow

BATCH_SIZES = (1, 100, 1000)
# Distinct bodies per batch size: 100,000 different rows, so the window (and what calculations see)
# holds real variety rather than a few bodies repeated.
DISTINCT_BODIES = {1: 1000, 100: 1000, 1000: 100}
BREAKDOWN_BODIES = {1: 500, 1000: 8}
PATH = f"/v1/models/{MODEL}/rows"


# --------------------------------------------------------------------------- the server under test


@dataclass
class Server:
    executor: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    requests: dict[int, list[bytes]] = field(default_factory=dict)
    name: str = ""  # label in the output; the executor kind unless given

    def __post_init__(self) -> None:
        self.name = self.name or self.executor

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the server process and of its children (the calculation worker)."""
        return cpu_seconds(self.process.pid), sum(_safe_cpu(pid) for pid in children(self.process.pid))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _safe_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def write_config(
    executor: str,
    tmp: Path,
    reference: Path,
    window_rows: int,
    name: str | None = None,
    storage: dict[str, Any] | None = None,
) -> Path:
    """A one-model config file in `tmp` (`storage`: the config's `storage:` mapping, None = off)."""
    config: dict[str, Any] = {
        "server": {"executor": executor, "max_rows_per_request": 10_000},
        "models": [model_config(reference, window_rows)],
    }
    if storage is not None:
        config["storage"] = storage
    path = tmp / f"monitor-{name or executor}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def launch(config: Path, executor: str, name: str, log: Path, log_level: str = "warning") -> Server:
    """Start `python -m monitor_service serve` on a free loopback port; output goes to `log` (appended)."""
    port = free_port()
    command = [sys.executable, "-m", "monitor_service", "serve", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", log_level]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    return Server(executor, port, process, log, name=name)


def start_server(
    executor: str,
    tmp: Path,
    reference: Path,
    window_rows: int,
    name: str | None = None,
    storage: dict[str, Any] | None = None,
) -> Server:
    path = write_config(executor, tmp, reference, window_rows, name, storage)
    return launch(path, executor, name or executor, tmp / f"server-{name or executor}.log")


def wait_ready(server: Server, deadline_seconds: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server ({server.name}) exited:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        time.sleep(0.2)
    raise TimeoutError(f"server ({server.name}) not ready after {deadline_seconds} s")


def post(port: int, path: str, body: bytes = b"", timeout: float = 300.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- the load generator


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending pre-built requests back to back (one in flight)."""

    def __init__(self, requests: list[bytes], offset: int, run: _Run) -> None:
        self.requests = requests
        self.index = offset
        self.run = run
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of asyncio's
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        request = self.requests[self.index % len(self.requests)]
        self.index += 1
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).lower()
            start = head.find(b"content-length:") + len(b"content-length:")
            length = int(head[start : head.find(b"\r\n", start) if b"\r\n" in head[start:] else None])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            status = int(self.buffer[9:12])
            del self.buffer[:end]
            now = time.perf_counter()
            self.run.record(status, now, now - self.sent_at)
            if now < self.run.stop_at:
                self._send()
            else:
                assert self.transport is not None
                self.transport.close()

    def connection_lost(self, _exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class _Run:
    measure_from: float
    stop_at: float
    done: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def record(self, status: int, now: float, latency: float) -> None:
        self.statuses[status] += 1
        if self.measure_from <= now <= self.stop_at:
            self.done += 1
            self.latencies.append(latency)


async def _drive(port: int, requests: list[bytes], connections: int, warmup: float, duration: float) -> _Run:
    loop = asyncio.get_running_loop()
    now = time.perf_counter()
    run = _Run(measure_from=now + warmup, stop_at=now + warmup + duration)
    protocols = []
    for i in range(connections):
        offset = i * len(requests) // connections
        _, protocol = await loop.create_connection(
            functools.partial(_Connection, requests, offset, run), "127.0.0.1", port
        )
        protocols.append(protocol)
    await asyncio.gather(*(p.closed for p in protocols))
    return run


def new_loop() -> asyncio.AbstractEventLoop:
    """The client's event loop: uvloop when installed (it comes with uvicorn[standard], which Evidently
    requires on Linux/CPython, but it is no direct dependency), else the standard asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "standard asyncio loop"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def describe_stack(loop: asyncio.AbstractEventLoop) -> str:
    """Which event loop the bench's client uses, and what uvicorn picks in the server (same venv):
    `loop: auto` takes uvloop and `http: auto` httptools when they are importable."""
    server_loop = "uvloop" if _importable("uvloop") else "asyncio"
    server_http = "httptools" if _importable("httptools") else "h11"
    return f"client loop: {loop_kind(loop)}; server: uvicorn with {server_loop} + {server_http}"


# --------------------------------------------------------------------------- calculations in a loop


class CalcLoop:
    """Calls POST /calculate back to back in a thread until stopped; records each wall time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.durations: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="calc-loop", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self._started.set()
            status, body = post(self.port, f"/v1/models/{MODEL}/calculate")
            if status != 200:
                self.errors.append(f"{status}: {body[:200]!r}")
                time.sleep(0.1)
            self.durations.append(time.perf_counter() - started)

    def __enter__(self) -> CalcLoop:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- measurements


@dataclass
class Phase:
    rows_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu: float
    server_cpu: float
    worker_cpu: float
    other_cpu: float
    calcs: int
    calc_s: float
    errors: int


def measure(
    loop: asyncio.AbstractEventLoop,
    server: Server,
    batch: int,
    connections: int,
    warmup: float,
    duration: float,
    calc: bool,
) -> Phase:
    calc_loop = CalcLoop(server.port) if calc else None
    with calc_loop or contextlib.nullcontext():
        server_before, worker_before = server.cpu()
        machine_before, process_before = machine_busy_seconds(), time.process_time()
        client_before, wall_before = time.thread_time(), time.perf_counter()
        requests = server.requests[batch]
        run = loop.run_until_complete(_drive(server.port, requests, connections, warmup, duration))
        wall = time.perf_counter() - wall_before
        client_cpu = (time.thread_time() - client_before) / wall
        server_after, worker_after = server.cpu()
        machine = (machine_busy_seconds() - machine_before) / wall
        bench_process = (time.process_time() - process_before) / wall
        calcs = list(calc_loop.durations) if calc_loop else []
    if calc_loop and calc_loop.errors:
        print(f"  calculation errors ({server.name}): {calc_loop.errors[:3]}")
    bad = sum(n for status, n in run.statuses.items() if status != 202)
    latencies = sorted(run.latencies) or [float("nan")]
    return Phase(
        rows_per_s=run.done * batch / duration,
        requests_per_s=run.done / duration,
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        max_ms=1000 * latencies[-1],
        client_cpu=client_cpu,
        server_cpu=(server_after - server_before) / wall,
        worker_cpu=(worker_after - worker_before) / wall,
        other_cpu=max(
            0.0,
            machine - bench_process - (server_after - server_before + worker_after - worker_before) / wall,
        ),
        calcs=len(calcs),
        calc_s=statistics.median(calcs) if calcs else float("nan"),
        errors=bad,
    )


def build_requests(port: int, bodies: dict[int, list[bytes]]) -> dict[int, list[bytes]]:
    out = {}
    for batch, items in bodies.items():
        out[batch] = [
            (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
            for body in items
        ]
    return out


def build_bodies(seed: int) -> dict[int, list[bytes]]:
    pool = records(frame(max(n * DISTINCT_BODIES[n] for n in BATCH_SIZES), seed=seed, shifted=True))
    return {
        n: [orjson.dumps({"rows": pool[i * n : (i + 1) * n]}) for i in range(DISTINCT_BODIES[n])]
        for n in BATCH_SIZES
    }


# --------------------------------------------------------------------------- profiling


def breakdown(config_path: Path, bodies: dict[int, list[bytes]], server_rps: dict[int, float]) -> None:
    """The handler's own stages timed in-process on the same bodies, against the server's time per request."""
    config = load_config(config_path)
    model = load_models(config)[MODEL]
    schema = model.schema
    window = SlidingWindow({c.name: c.kind for c in schema.columns}, model.config.window.max_rows)
    now = time.time()
    fill = [validate_rows(orjson.loads(b)["rows"], schema, now) for b in bodies[1000]]
    bodies = {n: items[: BREAKDOWN_BODIES.get(n, len(items))] for n, items in bodies.items()}
    for batch in fill * (window.max_rows // 1000 // len(fill) + 1):
        window.append(batch, time.time())  # fill, so appends also evict, as in the server

    def per_call(fn: Any, items: list[Any]) -> float:
        best = float("inf")
        for _ in range(30):
            started = time.perf_counter()
            for item in items:
                fn(item)
            best = min(best, (time.perf_counter() - started) / len(items))
        return best * 1000

    print("\nin-process stages per request, ms (best of 30 passes over the bench's bodies), and the idle")
    print("server's time per request (1 / its req/s when saturated): the difference is HTTP + FastAPI")
    header = f"{'batch':>6} {'body KB':>7} {'orjson':>7} {'validate':>8} {'append':>7} {'sum':>7}"
    print(f"  {header}  {'server':>7}")
    for n in (1, 1000):
        parsed = [orjson.loads(b)["rows"] for b in bodies[n]]
        batches = [validate_rows(rows, schema, now) for rows in parsed]
        parse_ms = per_call(orjson.loads, bodies[n])
        validate_ms = per_call(lambda rows: validate_rows(rows, schema, now), parsed)
        append_ms = per_call(lambda b: window.append(b, time.time()), batches)
        total = parse_ms + validate_ms + append_ms
        served = 1000 / server_rps[n] if server_rps.get(n) else float("nan")
        print(
            f"  {n:>6} {len(bodies[n][0]) / 1000:>7.1f} {parse_ms:>7.3f} {validate_ms:>8.3f} "
            f"{append_ms:>7.3f} {total:>7.3f}  {served:>7.3f}"
        )
    # A model with an id column (to join delayed labels) also keeps a row-id index in the window.
    kinds = {**{c.name: c.kind for c in schema.columns}, "request_id": ColumnKind.ID}
    with_ids = SlidingWindow(kinds, window.max_rows, id_column="request_id")
    id_batches = []
    for number, batch in enumerate(fill):
        ids = np.array([f"req-{number}-{i}" for i in range(batch.rows)], dtype=object)
        id_batches.append(Batch({**batch.columns, "request_id": ids}, batch.rows))
    for batch in id_batches * (with_ids.max_rows // 1000 // len(id_batches) + 1):
        with_ids.append(batch, time.time())
    id_ms = per_call(lambda b: with_ids.append(b, time.time()), id_batches)
    print(f"  window.append of 1,000 rows with an id column (full window, evicting): {id_ms:.3f} ms")
    # What each calculation costs on the server's own process (event loop / GIL) before it is handed off:
    # ModelState.calculate copies the window on the event loop; with the process executor the copy's
    # column arrays are pickled to the worker (multiprocessing's feeder thread, holding the GIL), which
    # builds the DataFrame itself; the reference crosses only when its version changed (worker cache).
    started = time.perf_counter()
    rows = window.copy(time.time())
    copy_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    columns_bytes = len(pickle.dumps(rows.columns, protocol=pickle.HIGHEST_PROTOCOL))
    columns_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    reference_bytes = len(pickle.dumps(model.reference, protocol=pickle.HIGHEST_PROTOCOL))
    reference_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    pd.DataFrame(rows.columns)
    frame_ms = (time.perf_counter() - started) * 1000
    print(
        f"per calculation, in the server process: window.copy() {copy_ms:.0f} ms (event loop); "
        f"process executor: pickling the copy's columns {columns_ms:.0f} ms / "
        f"{columns_bytes / 1e6:.0f} MB "
        f"(feeder thread, holding the GIL);\n  the reference ({len(model.reference):,} rows, "
        f"{reference_ms:.0f} ms / {reference_bytes / 1e6:.0f} MB pickled) only when it changed; "
        f"pd.DataFrame of the copy {frame_ms:.0f} ms, now in the worker"
    )


def pyspy_profile(
    py_spy: str, server: Server, loop: asyncio.AbstractEventLoop, args: Any, batch: int, calc: bool
) -> None:
    out = Path(tempfile.mkstemp(prefix="pyspy-", suffix=".txt")[1])
    seconds = max(2, round(args.duration))
    command = [py_spy, "record", "-p", str(server.process.pid), "-r", str(PYSPY_RATE), "-d", str(seconds)]
    command += ["-f", "raw", "-o", str(out), "--threads", "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    phase = measure(loop, server, batch, args.connections, 0.0, seconds + 0.6, calc)
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or out.stat().st_size == 0:
        print(f"  py-spy failed: {err.decode()[-300:]}")
        return
    load = "calc running" if calc else "idle"
    title = f"{server.executor} executor, {batch:,}-row batches x{args.connections}, {load}"
    summarise_pyspy(out.read_text(), title, phase.requests_per_s * seconds)
    out.unlink()


PYSPY_RATE = 250
MAIN_THREAD = "MainThread"
CATEGORIES = (  # first match wins, searched from the innermost frame outwards
    (
        "orjson parse (payload.parse_items)",
        ("monitor_service/payload.py", "_parse (monitor_service/api/ingest"),
    ),
    ("validate_rows: _numbers", ("_numbers (monitor_service/schema.py",)),
    ("validate_rows: _strings", ("_strings (monitor_service/schema.py",)),
    (
        "validate_rows: column gather",
        ("_transpose (monitor_service/schema.py", "<listcomp> (monitor_service/schema"),
    ),
    ("validate_rows: row/key checks", ("validate_rows (monitor_service/schema.py",)),
    ("window.append", ("append (monitor_service/window.py",)),
    ("read_body (request.stream)", ("read_body (monitor_service/api/deps.py",)),
    (
        "window copy for a calculation",
        ("copy (monitor_service/window",),
    ),
    ("calculation (engine)", ("monitor_service/engine/",)),
    ("durable log (journal)", ("monitor_service/journal/",)),
    ("prometheus metrics", ("prometheus_client/",)),
    ("other monitor_service code (handler, ModelState.ingest)", ("monitor_service/",)),
    ("response model / serialisation", ("serialize_response", "jsonable_encoder", "render (starlette")),
    ("uvicorn / httptools callbacks", ("uvicorn/protocols",)),
    ("fastapi / starlette routing & deps", ("fastapi/", "starlette/")),
    ("uvloop C code: socket I/O (leaf Runner.run)", ("Runner.run (asyncio/runners.py",)),
)
# Leaf frames of threads that are blocked, not running (py-spy cannot always tell).
WAITS = (
    "Condition.wait",
    "Event.wait",
    "_wait_for_tstate_lock",
    "select (",
    "poll (",
    "_recv_bytes",
    "_recv (",
    "_worker (concurrent/futures/thread.py",
)


def summarise_pyspy(raw: str, title: str, requests: float) -> None:
    """Samples of running threads; the event loop thread's samples by stage, in ms per request."""
    by_thread: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].partition(": ")[2] or frames[0]
        if any(w in frames[-1] for w in WAITS):
            waiting[thread] += count
            continue
        by_thread[thread] += count
        if thread != MAIN_THREAD:
            continue
        self_time[frames[-1]] += count
        category = "other"
        for frame_text in reversed(frames[1:]):
            hit = next((name for name, keys in CATEGORIES if any(k in frame_text for k in keys)), None)
            if hit:
                category = hit
                break
        by_category[category] += count
    main = by_thread[MAIN_THREAD] or 1
    per_request = 1000 / PYSPY_RATE / max(requests, 1)
    print(f"\npy-spy ({PYSPY_RATE} Hz): {title}; {requests:.0f} requests")
    print(
        "  running threads (samples): "
        + ", ".join(f"{name} {n}" for name, n in by_thread.most_common(5))
        + "; blocked: "
        + ", ".join(f"{name} {n}" for name, n in waiting.most_common(3))
    )
    print(f"  event loop thread by stage (share of its running samples, ms per request); {main} samples:")
    for name, n in by_category.most_common():
        print(f"    {100 * n / main:5.1f}%  {n * per_request:6.3f} ms  {name}")
    print("  event loop thread, top self time:")
    for name, n in self_time.most_common(12):
        print(f"    {100 * n / main:5.1f}%  {name[:110]}")


# --------------------------------------------------------------------------- main


HEADER = (
    f"{'load':<5} {'executor':<8} {'phase':<14} {'rows/s':>10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'max ms':>7}  {'cli':>4} {'srv':>5} {'wrk':>5} {'oth':>5}  {'calcs x med':>11} {'errs':>4}"
)
LEGEND = """\
cli/srv/wrk/oth: CPU used during the phase by the bench's client thread, the server process, its
  calculation worker process and every other process on the machine (100% = one core of 2);
calcs x med: calculations finished during the phase and their median wall time seen by the caller;
latency: from writing the request to reading the whole answer; with x8 it includes queueing behind
  the other 7 connections, x1 is the server's own latency."""


def _row(load: str, executor: str, name: str, p: Phase) -> str:
    calc = f"{p.calcs:>3.0f} x {p.calc_s:5.2f}s" if p.calcs else f"{'-':>11}"
    return (
        f"{load:<5} {executor:<8} {name:<14} {p.rows_per_s:>10,.0f} {p.requests_per_s:>7,.0f} "
        f"{p.p50_ms:>7.1f} "
        f"{p.p99_ms:>7.1f} {p.max_ms:>7.1f}  {p.client_cpu:>4.0%} {p.server_cpu:>5.0%} {p.worker_cpu:>5.0%} "
        f"{p.other_cpu:>5.0%}  {calc} {p.errors:>4.0f}"
    )


def _median_phase(phases: list[Phase]) -> Phase:
    values = {f: statistics.median(getattr(p, f) for p in phases) for f in Phase.__dataclass_fields__}
    values["calcs"] = sum(p.calcs for p in phases)  # finished over all rounds
    times = [p.calc_s for p in phases if p.calcs]
    values["calc_s"] = statistics.median(times) if times else float("nan")
    return Phase(**values)


def calculation_alone(servers: list[Server], repeat: int = 2) -> None:
    """Wall time of POST /calculate with nothing else running, for context."""
    parts = []
    for server in servers:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            status, body = post(server.port, f"/v1/models/{MODEL}/calculate")
            assert status == 200, body
            times.append(time.perf_counter() - started)
        parts.append(f"{server.executor} {min(times):.2f} s")
    print("calculation alone (POST /calculate, no ingest, best of 2): " + ", ".join(parts))


def tree_fingerprint() -> str:
    """Which monitor_service code was measured (it changes while others work): a content hash."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.parent.glob("monitor_service/**/*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--duration", type=float, default=2.5, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each phase")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections for throughput")
    parser.add_argument("--rounds", type=int, default=2, help="repeat the phase matrix; report medians")
    parser.add_argument("--executors", default="process,thread")
    parser.add_argument("--window-rows", type=int, default=100_000, help="window max_rows (prefilled)")
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary (default: on PATH)")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"python {sys.version.split()[0]}; "
        f"monitor_service sources {tree_fingerprint()}"
    )
    loop = new_loop()
    print(describe_stack(loop))
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    reference = tmp / "reference.parquet"
    frame(args.reference_rows, seed=1).to_parquet(reference)
    bodies = build_bodies(seed=2)
    servers = [start_server(e, tmp, reference, args.window_rows) for e in args.executors.split(",")]
    try:
        for server in servers:
            wait_ready(server)
            server.requests = build_requests(server.port, bodies)
            # Prefill the window so every measured append also evicts (the steady state).
            for i in range(args.window_rows // 1000):
                status, body = post(server.port, PATH, bodies[1000][i % len(bodies[1000])])
                assert status == 202, body
        print(
            f"ready after {time.perf_counter() - started:.1f} s; window {args.window_rows:,} rows (full), "
            f"reference {args.reference_rows:,} rows; client: asyncio protocol ({loop_kind(loop)}) "
            "in one thread, "
            f"{args.connections} connections for throughput, 1 for latency; {args.duration:g} s per phase"
        )
        calculation_alone(servers)
        print("\n" + HEADER)
        phases = [(f"{n}-row x{args.connections}", n, args.connections) for n in BATCH_SIZES]
        phases.append(("1000-row x1", 1000, 1))
        results: dict[tuple[str, str, str], list[Phase]] = {}
        for round_number in range(args.rounds):
            if args.rounds > 1:
                print(f"-- round {round_number + 1}")
            for load in ("idle", "calc"):
                for name, batch, connections in phases:
                    for server in servers:
                        p = measure(
                            loop, server, batch, connections, args.warmup, args.duration, load == "calc"
                        )
                        results.setdefault((load, server.executor, name), []).append(p)
                        print(_row(load, server.executor, name, p), flush=True)
        if args.rounds > 1:
            print(f"-- median of {args.rounds} rounds (calcs: total)")
            for (load, executor, name), items in results.items():
                print(_row(load, executor, name, _median_phase(items)))
            print(
                "-- quietest round of each phase (least CPU used by other processes, both servers together)"
            )
            executors = [server.executor for server in servers]
            for load in ("idle", "calc"):
                for name, _batch, _connections in phases:
                    pairs = [[results[(load, e, name)][r] for e in executors] for r in range(args.rounds)]
                    quiet = min(pairs, key=lambda pair: sum(p.other_cpu for p in pair))
                    for executor, p in zip(executors, quiet, strict=True):
                        print(_row(load, executor, name, p))
        print(LEGEND)
        print("server RSS: " + ", ".join(f"{s.executor} {rss_mb(s.process.pid):.0f} MB" for s in servers))
        idle_rps = {
            n: statistics.median(
                p.requests_per_s for p in results[("idle", servers[0].executor, f"{n}-row x{c}")]
            )
            for n, c in ((1, args.connections), (1000, args.connections))
        }
        breakdown(tmp / f"monitor-{servers[0].executor}.yaml", bodies, idle_rps)
        if not args.no_profile:
            if args.py_spy:
                for batch, calc in ((1, False), (1000, False), (1000, True)):
                    pyspy_profile(args.py_spy, servers[0], loop, args, batch, calc)
            else:
                print("\npy-spy not found: pip install py-spy (or pass --py-spy PATH) for a server profile")
    finally:
        for server in servers:
            server.stop()
        loop.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
