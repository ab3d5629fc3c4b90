"""What the durable log (`storage.data_dir`) costs at ingestion, and how fast a server recovers from it.

1. Ingestion. Three real servers (`python -m monitor_service serve`, process executor, the 20-column
   model of common.py, a 100k-row window prefilled so every append also evicts) run side by side
   for the whole part, differing only in `storage:`

     off       no data_dir (windows in memory only)
     interval  {data_dir: <tmp>, fsync: interval, fsync_interval: 200ms}
     batch     {data_dir: <tmp>, fsync: batch}         (fsync before every 202)

   (`compact_bytes` stays at its default, 64 MiB: the log is compacted into a snapshot every ~130k
   rows of 1,000-row JSON bodies, as in production.) Each phase is run on the three servers in turn
   before the next phase starts, and the whole matrix --rounds times, with the client of ingest.py
   (an asyncio protocol writing pre-serialised requests over keep-alive connections):

     1000-row x8   rows/s over 8 connections (throughput)
     1000-row x1   p50/p99/max latency with one request in flight
     1-row x8      requests/s of single rows (where a per-request fsync shows most)

   It prints each round, the medians, and the ratios interval/off and batch/off, computed within
   each round (the servers ran seconds apart) and then the median over rounds.

2. Recovery. Two servers with storage on (`fsync: interval`, `compact_bytes` large enough that
   nothing is compacted, `window.max_rows` = --recovery-rows) each take the same --recovery-rows
   rows (1,000-row bodies, one connection); one is then killed with SIGKILL (no exit snapshot: a
   restart replays everything from the log), the other stopped with SIGTERM (it writes a snapshot
   and deletes the segments it covers). Then, for --restarts rounds, alternating, the same config
   is started on

     empty     a fresh, empty data dir (the baseline: interpreter, imports, reference, worker start)
     log       the killed server's data dir (full replay; stopped with SIGKILL again, so it stays so)
     snapshot  the SIGTERM'd server's data dir (snapshot load, no log records; stopped with SIGTERM
               again, which writes no new snapshot since nothing was logged)

   and it measures the wall time from starting the process to the first 200 of /readyz (polled
   every 10 ms), and reads the server's own line "recovered N rows from M log records in X s"
   (monitor_service/model_state.py, INFO). Recovery runs before the calculation worker is started, so
   ready(log) - ready(empty) is the time recovery adds to a restart. Rows/s of recovery are given
   both ways. The files are in the page cache (just written): a cold start from disk adds the read.

    python bench/durability.py [--duration 2.5] [--rounds 2] [--connections 8]
                               [--recovery-rows 500000] [--restarts 3] [--skip-ingest] [--skip-recovery]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from common import MODEL, children, frame, rss_mb
from ingest import (
    PATH,
    Phase,
    Server,
    build_bodies,
    build_requests,
    describe_stack,
    launch,
    loop_kind,
    machine_busy_seconds,
    measure,
    new_loop,
    start_server,
    tree_fingerprint,
    wait_ready,
    write_config,
)

STORAGE: dict[str, dict[str, Any] | None] = {
    "off": None,
    "interval": {"fsync": "interval", "fsync_interval": "200ms"},
    "batch": {"fsync": "batch"},
}
# The server's log format is "%(asctime)s %(levelname)s %(name)s: %(message)s" (monitor_service/cli.py).
RECOVERED = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO \S+: model (?P<model>\S+): recovered "
    r"(?P<rows>\d+) rows from (?P<records>\d+) log records in (?P<seconds>[\d.]+) s",
    re.MULTILINE,
)


# --------------------------------------------------------------------------- helpers


def storage_config(variant: str, data_dir: Path) -> dict[str, Any] | None:
    base = STORAGE[variant]
    return None if base is None else {"data_dir": str(data_dir), **base}


def segment_numbers(data_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("-", 1)[1]) for p in (data_dir / MODEL).glob("segment-*.wal"))


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def post_all(port: int, bodies: list[bytes]) -> None:
    """POST each body in turn over one keep-alive connection; every answer must be 202."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for body in bodies:
            conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            if response.status != 202:
                raise RuntimeError(f"POST answered {response.status}: {answer[:300]!r}")
    finally:
        conn.close()


def ready_after(server: Server, started: float, deadline_seconds: float = 120.0) -> float:
    """Seconds from `started` (before Popen) to the first 200 of /readyz, polled every 10 ms."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server ({server.name}) exited:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return time.perf_counter() - started
            finally:
                conn.close()
        time.sleep(0.01)
    raise TimeoutError(f"server ({server.name}) not ready after {deadline_seconds} s")


def stop(server: Server, sig: signal.Signals) -> None:
    """Send `sig` and wait for the server; then make sure its calculation worker and multiprocessing
    helpers are gone too (after SIGKILL they exit by themselves within about a second)."""
    helpers = children(server.process.pid)
    server.process.send_signal(sig)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    deadline = time.monotonic() + 5
    while helpers and time.monotonic() < deadline:
        helpers = [pid for pid in helpers if _alive(pid)]
        time.sleep(0.05)
    for pid in helpers:  # still there: end them (our own server's children, by pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def recovered_line(log: Path, skip_bytes: int, started_wall: float) -> dict[str, float] | None:
    """The server's own recovery line, from the part of its log written since `skip_bytes`: rows,
    records, seconds, and `at`: when it was logged, in seconds after `started_wall` (time.time())."""
    with open(log, "rb") as f:
        f.seek(skip_bytes)
        text = f.read().decode(errors="replace")
    match = RECOVERED.search(text)
    if match is None:
        return None
    logged = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logged
    out = {k: float(match[k]) for k in ("rows", "records", "seconds")}
    out["at"] = logged - started_wall
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "n/a (within the noise of a start)"


# --------------------------------------------------------------------------- 1. ingestion


def ingest_part(args: argparse.Namespace, tmp: Path, reference: Path, bodies: dict[int, list[bytes]]) -> None:
    loop = new_loop()
    print(f"\n== 1. ingestion, storage off / interval / batch side by side ({describe_stack(loop)})")
    started = time.perf_counter()
    bodies = {n: bodies[n] for n in (1, 1000)}
    data_dirs = {v: tmp / f"data-{v}" for v in STORAGE}
    servers = [
        start_server(
            "process", tmp, reference, args.window_rows, name=v, storage=storage_config(v, data_dirs[v])
        )
        for v in STORAGE
    ]
    try:
        for server in servers:
            wait_ready(server)
            server.requests = build_requests(server.port, bodies)
        first_segment = {}
        for server in servers:  # prefill: every measured append also evicts (the steady state)
            fill = [bodies[1000][i % len(bodies[1000])] for i in range(args.window_rows // 1000)]
            post_all(server.port, fill)
            first_segment[server.name] = max(segment_numbers(data_dirs[server.name]), default=0)
        print(
            f"ready and prefilled after {time.perf_counter() - started:.1f} s: window {args.window_rows:,} "
            f"rows (full), {len(bodies[1000][0]) / 1000:.0f} KB per 1,000-row body; client "
            f"{loop_kind(loop)}; {args.duration:g} s per phase after {args.warmup:g} s warm-up"
        )
        phases = [
            ("1000-row x8", 1000, args.connections),
            ("1000-row x1", 1000, 1),
            ("1-row x8", 1, args.connections),
        ]
        header = (
            f"{'storage':<9} {'phase':<12} {'rows/s':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'max ms':>7}  {'cli':>4} {'srv':>5} {'oth':>5} {'errs':>4}"
        )
        results: dict[tuple[str, str], list[Phase]] = {}
        print(header)
        for round_number in range(args.rounds):
            print(f"-- round {round_number + 1}")
            for name, batch, connections in phases:
                for server in servers:
                    p = measure(loop, server, batch, connections, args.warmup, args.duration, False)
                    results.setdefault((server.name, name), []).append(p)
                    print(_row(server.name, name, p), flush=True)
        print(f"-- median of {args.rounds} rounds")
        for name, _batch, _connections in phases:
            for variant in STORAGE:
                print(_row(variant, name, _median(results[(variant, name)])))
        print(
            "cli/srv/oth: CPU of the bench's client thread, the server process, and every other process "
            "on the machine during the phase (100% = one core)"
        )
        print("\nratios to storage off (within each round, then the median over rounds):")
        for name, metric, unit in (
            ("1000-row x8", "rows_per_s", "rows/s"),
            ("1000-row x1", "rows_per_s", "rows/s"),
            ("1-row x8", "requests_per_s", "req/s"),
            ("1000-row x1", "p50_ms", "p50 latency"),
            ("1000-row x1", "p99_ms", "p99 latency"),
        ):
            cells = []
            for variant in ("interval", "batch"):
                per_round = [
                    _ratio(getattr(mine, metric), getattr(base, metric))
                    for mine, base in zip(results[(variant, name)], results[("off", name)], strict=True)
                ]
                cells.append(
                    f"{variant}/off {statistics.median(per_round):5.2f} "
                    f"({', '.join(f'{r:.2f}' for r in per_round)})"
                )
            print(f"  {name:<12} {unit:<12} " + "   ".join(cells))
        print("  (target: interval/off >= 0.8 for 1,000-row rows/s)")
        for server in servers:
            if server.name != "off":
                segments = segment_numbers(data_dirs[server.name])
                compactions = max(segments, default=0) - first_segment[server.name]
                print(
                    f"{server.name}: {compactions} compaction(s) into a snapshot while measured "
                    f"(compact_bytes 64 MiB); data dir now {directory_mb(data_dirs[server.name]):.0f} MB"
                )
        print("server RSS: " + ", ".join(f"{s.name} {rss_mb(s.process.pid):.0f} MB" for s in servers))
    finally:
        for server in servers:
            stop(server, signal.SIGTERM)
        loop.close()
        for data_dir in data_dirs.values():
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"part 1: {time.perf_counter() - started:.0f} s")


def _row(variant: str, name: str, p: Phase) -> str:
    return (
        f"{variant:<9} {name:<12} {p.rows_per_s:>9,.0f} {p.requests_per_s:>7,.0f} {p.p50_ms:>7.1f} "
        f"{p.p99_ms:>7.1f} {p.max_ms:>7.1f}  {p.client_cpu:>4.0%} {p.server_cpu:>5.0%} "
        f"{p.other_cpu:>5.0%} {p.errors:>4.0f}"
    )


def _median(phases: list[Phase]) -> Phase:
    return Phase(**{f: statistics.median(getattr(p, f) for p in phases) for f in Phase.__dataclass_fields__})


# --------------------------------------------------------------------------- 2. recovery


def recovery_part(args: argparse.Namespace, tmp: Path, reference: Path, pool: list[bytes]) -> None:
    started = time.perf_counter()
    rows = args.recovery_rows // 1000 * 1000
    print(f"\n== 2. recovery of a {rows:,}-row window (process executor, fsync: interval)")
    storage = {"fsync": "interval", "fsync_interval": "200ms", "compact_bytes": 1 << 40}
    configs: dict[str, Path] = {}
    dirs = {"log": tmp / "rec-log", "snapshot": tmp / "rec-snapshot"}

    def config_for(name: str, data_dir: Path) -> Path:
        return write_config(
            "process", tmp, reference, rows, name=name, storage={"data_dir": str(data_dir), **storage}
        )

    log_file = tmp / "server-recovery.log"

    def start(name: str, config: Path) -> tuple[Server, float, int, float]:
        offset = log_file.stat().st_size if log_file.exists() else 0
        wall, t0 = time.time(), time.perf_counter()
        server = launch(config, "process", name, log_file, log_level="info")
        return server, t0, offset, wall

    # Two servers take the same rows: one is then SIGKILLed (no snapshot: everything stays in the log),
    # the other SIGTERMed (it writes a snapshot of its window and deletes the segments it covers).
    # (A server restarted from a log and SIGTERMed without having logged anything since its start
    # writes no snapshot: Monitor.shutdown only compacts a log whose current segment is not empty.)
    launched = {}
    for variant in ("log", "snapshot"):
        configs[variant] = config_for(f"rec-{variant}", dirs[variant])
        launched[variant] = start(f"fill-{variant}", configs[variant])
    fill = [pool[i % len(pool)] for i in range(rows // 1000)]
    sizes = {}
    for variant, sig in (("log", signal.SIGKILL), ("snapshot", signal.SIGTERM)):
        server, t0, _, _ = launched[variant]
        ready_after(server, t0)
        fill_started = time.perf_counter()
        post_all(server.port, fill)
        fill_seconds = time.perf_counter() - fill_started
        time.sleep(0.5)  # > fsync_interval (SIGKILL loses nothing written anyway: the page cache has it)
        stop(server, sig)
        sizes[variant] = directory_mb(dirs[variant])
        files = ", ".join(
            sorted(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in (dirs[variant] / MODEL).iterdir())
        )
        print(
            f"{variant:<8}: filled {rows:,} rows in {fill_seconds:.1f} s ({rows / fill_seconds:,.0f} rows/s, "
            f"one connection), then {sig.name}: {files}"
        )
    log_mb, snapshot_mb = sizes["log"], sizes["snapshot"]

    variants = ("empty", "log", "snapshot")
    ready: dict[str, list[float]] = {v: [] for v in variants}
    logged_at: dict[str, list[float]] = {v: [] for v in variants}
    own: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    print(
        f"\n{'round':<6} {'data dir':<9} {'ready s':>8} {'line at s':>9}  {'server: rows':>12} "
        f"{'records':>8} {'in s':>6}  {'srv cpu s':>9} {'oth':>5}"
    )
    for round_number in range(args.restarts):
        for variant in variants:
            if variant == "empty":
                data_dir = tmp / f"rec-empty-{round_number}"
                config = config_for(f"rec-empty-{round_number}", data_dir)
            else:
                config = configs[variant]
            machine_before, bench_before = machine_busy_seconds(), time.process_time()
            server, t0, offset, wall = start(variant, config)
            seconds = ready_after(server, t0)
            server_cpu, worker_cpu = server.cpu()
            other = (
                machine_busy_seconds() - machine_before - (time.process_time() - bench_before) - server_cpu
            ) - worker_cpu
            line = recovered_line(log_file, offset, wall)
            stop(server, signal.SIGKILL if variant == "log" else signal.SIGTERM)
            ready[variant].append(seconds)
            cpu[variant].append(server_cpu)
            if line is None:
                print(f"{round_number + 1:<6} {variant:<9} {seconds:>8.2f}  (no recovery line in the log)")
                continue
            logged_at[variant].append(line["at"])
            own[variant].append(line["seconds"])
            if variant != "empty" and line["rows"] != rows:
                print(f"  !! {variant}: the server recovered {line['rows']:.0f} rows, expected {rows:,}")
            print(
                f"{round_number + 1:<6} {variant:<9} {seconds:>8.2f} {line['at']:>9.2f}  "
                f"{line['rows']:>12,.0f} {line['records']:>8,.0f} {line['seconds']:>6.2f}  "
                f"{server_cpu:>9.2f} {max(0.0, other) / seconds:>5.0%}",
                flush=True,
            )
    print(
        "ready s: from starting the process to the first 200 of /readyz; line at s: when the server logged\n"
        "its recovery line (recovery done, worker not started yet); in s: the recovery time it logged;\n"
        "srv cpu s: CPU seconds of the server process (not its worker) until ready, less sensitive to\n"
        "other load than wall times; oth: CPU of every other process on the machine meanwhile\n"
        "(100% = one core)"
    )

    base = statistics.median(ready["empty"])
    print(f"\nmedian of {args.restarts} restarts each; empty data dir: ready after {base:.2f} s")
    for variant in ("log", "snapshot"):
        source = f"{log_mb:.0f} MB of log" if variant == "log" else f"a {snapshot_mb:.0f} MB snapshot"
        added = [r - e for r, e in zip(ready[variant], ready["empty"], strict=True)]  # within each round
        added_median = statistics.median(added)
        line_added = [a - e for a, e in zip(logged_at[variant], logged_at["empty"], strict=False)]
        line_median = statistics.median(line_added) if line_added else float("nan")
        server_seconds = statistics.median(own[variant]) if own[variant] else float("nan")
        cpu_added = statistics.median(c - e for c, e in zip(cpu[variant], cpu["empty"], strict=True))
        print(
            f"  from {source}:\n"
            f"    /readyz: {statistics.median(ready[variant]):.2f} s, {added_median:+.2f} s over empty "
            f"(per round: {', '.join(f'{a:+.2f}' for a in added)}) -> {_rate(rows, added_median)}\n"
            f"    recovery line logged {line_median:+.2f} s later than with an empty dir "
            f"(per round: {', '.join(f'{a:+.2f}' for a in line_added)}) -> {_rate(rows, line_median)}\n"
            f"    the server's own recovery time {server_seconds:.2f} s -> {_rate(rows, server_seconds)}\n"
            f"    server CPU until ready {cpu_added:+.2f} s over empty -> {_rate(rows, cpu_added)} "
            "per CPU second"
        )
    for data_dir in [*dirs.values(), *tmp.glob("rec-empty-*")]:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"part 2: {time.perf_counter() - started:.0f} s")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--duration", type=float, default=2.5, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each phase")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections for throughput")
    parser.add_argument("--rounds", type=int, default=2, help="repeat the ingestion matrix")
    parser.add_argument("--window-rows", type=int, default=100_000, help="window max_rows (prefilled)")
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--recovery-rows", type=int, default=500_000, help="rows in the log to recover")
    parser.add_argument("--restarts", type=int, default=3, help="restarts of each kind (alternating)")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-recovery", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"monitor_service sources {tree_fingerprint()}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="drift-durability-"))
    print(f"data dirs under {tmp} (file system of the temp dir: fsync cost depends on it)")
    try:
        reference = tmp / "reference.parquet"
        frame(args.reference_rows, seed=1).to_parquet(reference)
        bodies = build_bodies(seed=2)  # 100,000 distinct rows (shifted), as in ingest.py
        if not args.skip_ingest:
            ingest_part(args, tmp, reference, bodies)
        if not args.skip_recovery:
            recovery_part(args, tmp, reference, bodies[1000])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
