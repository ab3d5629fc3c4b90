"""Ingest throughput and latency of the real server against the parser floor, with wrk as the load.

Starts, for the whole run, on free loopback ports:

  floor   bench/floor_app.py: a bare ASGI app that only reads the body and parses it with orjson, on
          uvicorn with httptools and uvloop as the monitor shipped before its guard (nothing the
          monitor does can be faster than this on the same server)
  ours    `python -m monitor_service serve` as shipped (the guard, the one-pass decoder, gc.freeze),
          process executor, the 20-column model of common.py (15 numerical, 5 categorical), a
          100k-row Parquet reference, window.max_rows 100k prefilled so every append also evicts
  NAME    (--compare-tree NAME=DIR, repeatable) the monitor from another source tree, same config

and runs wrk (`-t1`, a C client that costs the server far less CPU than a Python one) phase by
phase, every server in turn within a phase, the whole matrix --rounds times:

  1000-row x4    1,000-row JSON `{"rows": [...]}` batches over 4 keep-alive connections: rows/s
  1-row x4       single-row requests: requests/s
  columns-10k x4 10,000-row `{"columns": {...}}` JSON bodies (monitor only; the floor has no rules)
  arrow-10k x4   10,000-row Arrow IPC stream bodies
  1000-row x1    one request in flight: the server's own latency (p50/p99/max)
  ... calc       the same while a thread calls POST /calculate back to back (a 100k-row window
                 against a 100k-row reference is always being calculated or handed over)

Each phase prints rows/s, requests/s and latency, and the monitor's ratio to the floor of the same
phase and round; then the medians and the per-round ratios. Finally the in-process cost of each
decoding stage on the same bodies. Bodies carry full float64 precision (about 0.5 KB per JSON row).
Phases are 10 s by default: shorter ones can miss the full garbage collections a busy server does
every few seconds (see bench/README.md).

    python bench/ingest.py [--duration 10] [--rounds 3] [--compare-tree NAME=DIR ...] [--skip-calc]
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

import orjson
import pandas as pd
import yaml
from common import MODEL, children, cpu_seconds, frame, model_config, records, rss_mb

from monitor_service.child_processes import free_port
from monitor_service.config import load_config
from monitor_service.schema import validate_rows
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


def breakdown(config_path: Path, bodies: dict[str, list[bytes]]) -> None:
    """The handler's decoding stages timed in-process on the bench's bodies (best of 30 passes)."""
    from monitor_service.bodies import ARROW, JSON, decode_rows
    from monitor_service.payload import parse_items

    config = load_config(config_path)
    model = load_models(config)[MODEL]
    schema = model.schema
    window = SlidingWindow({c.name: c.kind for c in schema.columns}, model.config.window.max_rows)
    now = time.time()

    def per_call(fn: Any, items: list[Any]) -> float:
        best = float("inf")
        for _ in range(30):
            started = time.perf_counter()
            for item in items:
                fn(item)
            best = min(best, (time.perf_counter() - started) / len(items))
        return best * 1000

    print("\nin-process, ms per body (best of 30 passes):")
    head = f"  {'body':<12} {'KB':>6} {'orjson.loads':>12} {'general path':>13}"
    print(head + f" {'decode_rows':>12} {'append':>7}")
    for kind in ("1-row", "1000-row", "columns-10k", "arrow-10k"):
        items = bodies[kind][:8]
        fmt = ARROW if kind == "arrow-10k" else JSON
        batches = [decode_rows(b, fmt, schema, now) for b in items]
        for batch in batches * (window.max_rows // max(1, batches[0].rows) + 1):
            window.append(batch, time.time())  # full, so appends also evict
        parse = per_call(orjson.loads, items) if fmt == JSON else float("nan")
        general = (
            per_call(lambda b: validate_rows(parse_items(b, False, "rows"), schema, now), items)
            if kind in ("1-row", "1000-row")
            else float("nan")
        )
        decode = per_call(lambda b, f=fmt: decode_rows(b, f, schema, now), items)
        append = per_call(lambda b: window.append(b, time.time()), batches)
        size = len(items[0]) / 1000
        print(f"  {kind:<12} {size:>6.1f} {parse:>12.3f} {general:>13.3f} {decode:>12.3f} {append:>7.3f}")


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


def tree_fingerprint() -> str:
    """Which monitor_service code was measured (it changes while others work): a content hash."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.parent.glob("monitor_service/**/*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def start_floor(tmp: Path) -> Server:
    """The floor: bench/floor_app.py on uvicorn with httptools and uvloop, nothing else."""
    port = free_port()
    log = tmp / "server-floor.log"
    command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--http", "httptools", "--loop", "uvloop"]
    command += ["--no-access-log", "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Server("-", port, process, log, name="floor")


def start_tree(tree: Path, tmp: Path, reference: Path, window_rows: int, name: str) -> Server:
    """The monitor from another source tree (e.g. an older commit), same config as ours."""
    path = write_config("process", tmp, reference, window_rows, name)
    port = free_port()
    log = tmp / f"server-{name}.log"
    command = [sys.executable, "-m", "monitor_service", "serve", "--config", str(path)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tree)
    return Server("process", port, process, log, name=name)


def arrow_body(frame_: pd.DataFrame) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame_, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def wrk_bodies(seed: int) -> dict[str, list[bytes]]:
    """Request bodies per phase kind: 1- and 1,000-row JSON, 10,000-row JSON columns and Arrow."""
    rows = records(frame(20_000, seed=seed, shifted=True))
    big = [frame(10_000, seed=seed + i, shifted=True) for i in range(4)]
    return {
        "1-row": [orjson.dumps({"rows": rows[i : i + 1]}) for i in range(1000)],
        "1000-row": [orjson.dumps({"rows": rows[i : i + 1000]}) for i in range(0, 20_000, 1000)],
        "columns-10k": [
            orjson.dumps({"columns": {k: [r[k] for r in records(f)] for k in f.columns}}) for f in big
        ],
        "arrow-10k": [arrow_body(f) for f in big],
    }


CONTENT_TYPES = {"arrow-10k": "application/vnd.apache.arrow.stream"}
ROWS_PER_BODY = {"1-row": 1, "1000-row": 1000, "columns-10k": 10_000, "arrow-10k": 10_000}


@dataclass
class WrkPhase:
    server: str
    kind: str
    connections: int
    load: str
    result: Any  # wrkload.WrkResult
    calcs: int = 0

    @property
    def rows_per_s(self) -> float:
        return float(self.result.good_per_s * ROWS_PER_BODY[self.kind])


def wrk_phase(
    server: Server, kind: str, connections: int, bodies: dict[str, list[bytes]], duration: float, calc: bool
) -> WrkPhase:
    from wrkload import run_wrk

    headers = {"Content-Type": CONTENT_TYPES.get(kind, "application/json")}
    calc_loop = CalcLoop(server.port) if calc else None
    with calc_loop or contextlib.nullcontext():
        result = run_wrk(
            f"http://127.0.0.1:{server.port}{PATH}",
            bodies[kind],
            headers,
            duration=duration,
            connections=connections,
            timeout=10,
        )
    return WrkPhase(
        server.name,
        kind,
        connections,
        "calc" if calc else "idle",
        result,
        len(calc_loop.durations) if calc_loop else 0,
    )


def _cell(p: WrkPhase) -> str:
    r = p.result
    errors = f" ERR {r.non_2xx}+{r.socket_errors}" if r.non_2xx or r.socket_errors else ""
    return _figures(p.rows_per_s, r.good_per_s, r.p50_ms, r.p99_ms, r.max_ms) + errors


def _figures(rows: float, requests: float, p50: float, p99: float, worst: float) -> str:
    return (
        f"{rows:>12,.0f} rows/s {requests:>8,.0f} req/s  p50 {p50:5.1f}  p99 {p99:6.1f}  max {worst:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase (>= 10)")
    parser.add_argument("--rounds", type=int, default=3, help="repeat the phase matrix; report medians")
    parser.add_argument("--window-rows", type=int, default=100_000, help="window max_rows (prefilled)")
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument(
        "--compare-tree",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also measure the monitor from this source tree (repeatable)",
    )
    parser.add_argument("--skip-calc", action="store_true", help="no phases with calculations running")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"python {sys.version.split()[0]}; monitor_service sources {tree_fingerprint()}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    reference = tmp / "reference.parquet"
    frame(args.reference_rows, seed=1).to_parquet(reference)
    bodies = wrk_bodies(seed=2)
    ours = start_server("process", tmp, reference, args.window_rows, name="ours")
    floor = start_floor(tmp)
    servers = [floor, ours]
    for spec in args.compare_tree:
        name, _, tree = spec.rpartition("=")
        servers.append(start_tree(Path(tree).resolve(), tmp, reference, args.window_rows, name or "before"))
    monitors = [s for s in servers if s is not floor]
    try:
        for server in servers:
            wait_ready(server)
        for server in monitors:  # prefill, so every measured append also evicts (the steady state)
            for i in range(args.window_rows // 1000):
                status, body = post(server.port, PATH, bodies["1000-row"][i % len(bodies["1000-row"])])
                assert status == 202, body
        print(
            f"ready after {time.perf_counter() - started:.0f} s; window {args.window_rows:,} rows (full), "
            f"reference {args.reference_rows:,} rows, 20 columns; load generator: wrk -t1; "
            f"{args.duration:g} s per phase, {args.rounds} rounds, servers in turn within each phase"
        )
        matrix: list[tuple[str, int, list[Server], bool]] = [
            ("1000-row", 4, servers, False),
            ("1-row", 4, servers, False),
            ("columns-10k", 4, monitors, False),
            ("arrow-10k", 4, monitors, False),
            ("1000-row", 1, servers, False),
        ]
        if not args.skip_calc:
            matrix += [("1000-row", 1, monitors, True), ("1000-row", 4, monitors, True)]
        results: dict[tuple[str, int, str, str], list[WrkPhase]] = {}
        ratios: dict[tuple[str, int, str], list[float]] = {}
        for number in range(args.rounds):
            print(f"-- round {number + 1}")
            for kind, connections, group, calc in matrix:
                phases = [wrk_phase(s, kind, connections, bodies, args.duration, calc) for s in group]
                for p in phases:
                    results.setdefault((kind, connections, p.load, p.server), []).append(p)
                    print(f"  {kind:<11} x{connections} {p.load:<4} {p.server:<6} {_cell(p)}", flush=True)
                base = next((p for p in phases if p.server == "floor"), None)
                if base and base.rows_per_s:
                    for p in phases:
                        if p.server != "floor":
                            ratio = p.rows_per_s / base.rows_per_s
                            ratios.setdefault((kind, connections, p.server), []).append(ratio)
                            print(f"  {'':<11}    {'':<4} {p.server:<6} {ratio:.2f} x the floor")
        print(f"-- medians of {args.rounds} rounds (each cell: median of rows/s, req/s, p50, p99, max)")
        for (kind, connections, load, name), items in results.items():
            med = statistics.median
            figures = _figures(
                med(p.rows_per_s for p in items),
                med(p.result.good_per_s for p in items),
                med(p.result.p50_ms for p in items),
                med(p.result.p99_ms for p in items),
                med(p.result.max_ms for p in items),
            )
            calcs = f"  ({sum(p.calcs for p in items)} calculations)" if load == "calc" else ""
            print(f"  {kind:<11} x{connections} {load:<4} {name:<6} {figures}{calcs}")
        for (kind, connections, name), values in ratios.items():
            rounds = ", ".join(f"{v:.2f}" for v in values)
            median = statistics.median(values)
            print(
                f"  ratio to the floor, {kind} x{connections}, {name}: median {median:.2f} (rounds: {rounds})"
            )
        print("server RSS: " + ", ".join(f"{s.name} {rss_mb(s.process.pid):.0f} MB" for s in servers))
        breakdown(tmp / "monitor-ours.yaml", bodies)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
