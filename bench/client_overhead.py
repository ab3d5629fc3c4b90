"""What MonitorClient.send_row adds to a model service's request path.

A tiny `predict` (a linear model over the diamonds features, about a microsecond) is called N times
per phase, timing each call, in three variants that do the same work except the client call:

  none   predict(row) and build the monitored record {**row, "prediction": p}
  up     the same + client.send_row("diamonds", record), the monitor up on loopback
  down   the same + client.send_row(...), the client pointed at a port that refuses connections

each in two loads:

  tight  calls back to back on one thread (the worst case: the caller never leaves the GIL to the
         sender thread voluntarily, so the sender only runs at forced GIL switches; more rows are
         offered than one sender can POST, and the queue overflows: counted drops)
  paced  --rate calls per second, sleeping in between, as a service thread that waits for requests

Phases alternate round by round (the machine is shared and noisy). The monitor is the real server
(`python -m monitor_service serve --config config/example.yaml` on a free port) unless --stub,
which answers 202 to everything from a stdlib server process. Reported per variant: p50/p99/p99.9/
max per call in microseconds and what the client adds to them (target: p99 added < 200 us), calls
per second of the loop (median over rounds) and its ratio to `none` (target: `down` as fast as
`none`), process CPU per call (caller and sender thread, until close() returned), and the client's
counters. --predict-us makes predict() heavier, to see the ratios for a less trivial model.

    python bench/client_overhead.py [--calls 50000] [--paced-calls 3000] [--rate 3000] [--rounds 5]
                                    [--predict-us 0] [--stub]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor_service.child_processes import free_port
from monitor_service.client import ClientStats, MonitorClient

ROOT = Path(__file__).resolve().parent.parent

MODEL = "diamonds"
WEIGHTS = {"carat": 7800.0, "depth": -60.0, "table": -30.0, "x": -900.0, "y": 40.0, "z": 80.0}
STRINGS = ("request_id", "cut", "color", "clarity")
STUB = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"model":"diamonds","accepted":0,"window_rows":0}'
        self.send_response(202); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST
    def log_message(self, *args): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def predict(row: dict[str, Any], spin_ns: int = 0) -> float:
    """The model: a linear function of the features, plus `spin_ns` of pure-Python work if asked."""
    if spin_ns:
        end = time.perf_counter_ns() + spin_ns
        while time.perf_counter_ns() < end:
            pass
    return 326.0 + sum(weight * float(row[name]) for name, weight in WEIGHTS.items())


def load_rows(limit: int = 5000) -> list[dict[str, Any]]:
    with open(ROOT / "datasets" / "diamonds" / "production.csv") as f:
        rows = [
            {k: v if k in STRINGS else float(v) for k, v in row.items() if k != "prediction"}
            for _, row in zip(range(limit), csv.DictReader(f), strict=False)
        ]
    return rows


@contextlib.contextmanager
def monitor_up(stub: bool) -> Iterator[tuple[str, Callable[[], None]]]:
    """The monitor's URL, and a check that raises with the server's log when it is no longer running."""
    port = free_port()
    if stub:
        command = [sys.executable, "-c", STUB, str(port)]
    else:
        command = [sys.executable, "-m", "monitor_service", "serve", "--config", "config/example.yaml"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

        def check(what: str = "exited") -> None:
            if process.poll() is not None or what != "exited":
                log.seek(0)
                raise RuntimeError(f"monitor {what}:\n{log.read().decode()[-3000:]}")

        try:
            deadline = time.monotonic() + 120
            while True:
                check("exited" if time.monotonic() < deadline else "did not start in time")
                with contextlib.suppress(OSError, http.client.HTTPException):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/readyz")
                    ready = conn.getresponse().status < 300  # the stub answers 202
                    conn.close()
                    if ready:
                        break
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", check
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_phase(
    rows: list[dict[str, Any]],
    calls: int,
    rate: float | None,
    send: Callable[..., None] | None,
    spin_ns: int = 0,
) -> tuple[list[int], float]:
    """Per-call nanoseconds and the loop's wall seconds (sleeps included when paced)."""
    timings = [0] * calls
    n = len(rows)
    interval = 1.0 / rate if rate else 0.0
    clock = time.perf_counter_ns
    started = time.perf_counter()
    next_call = started
    for i in range(calls):
        if rate:
            next_call += interval
            pause = next_call - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        row = rows[i % n]
        t0 = clock()
        record = {**row, "prediction": predict(row, spin_ns)}
        if send is not None:
            send(MODEL, record)
        timings[i] = clock() - t0
    return timings, time.perf_counter() - started


def percentiles(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    quantiles = {"p50": 0.5, "p99": 0.99, "p99.9": 0.999, "max": 1.0}
    return {
        name: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000 for name, q in quantiles.items()
    }


@dataclass
class Phase:
    """What one (load, client) pair measured over all rounds."""

    timings: list[int] = field(default_factory=list)  # ns per call
    rates: list[float] = field(default_factory=list)  # calls per second of the loop, per round
    cpu: float = 0.0  # process CPU seconds (caller and sender threads), until the client was closed
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Median over the rounds: one round hit by a stall of the (shared) machine does not count."""
        return statistics.median(self.rates)

    def add_stats(self, stats: ClientStats) -> None:
        for name in ("enqueued", "sent", "dropped_queue_full", "dropped_after_retries", "retried"):
            self.counters[name] = self.counters.get(name, 0) + getattr(stats, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50_000, help="calls per tight phase")
    parser.add_argument("--paced-calls", type=int, default=3_000, help="calls per paced phase")
    parser.add_argument("--rate", type=float, default=3_000.0, help="calls per second when paced")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--predict-us", type=float, default=0.0, help="extra pure-Python work in predict()")
    parser.add_argument("--stub", action="store_true", help="a stdlib 202 server instead of the real monitor")
    args = parser.parse_args()
    rows = load_rows()
    spin_ns = int(args.predict_us * 1000)
    logging.getLogger("monitor_service.client").setLevel(logging.ERROR)  # drops when down are expected
    loads = {"tight": (args.calls, None), "paced": (args.paced_calls, args.rate)}
    variants = ("none", "up", "down")
    phases = {(load, variant): Phase() for load in loads for variant in variants}
    with socket.socket() as refusing, monitor_up(args.stub) as (up_url, check_up):
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        urls = {"up": up_url, "down": f"http://127.0.0.1:{refusing.getsockname()[1]}"}
        print(
            f"monitor: {'stub' if args.stub else 'real server'} at {up_url}; predict() +{args.predict_us} us"
        )
        run_phase(rows, 20_000, None, None, spin_ns)  # warm up
        for _ in range(args.rounds):
            for load, (calls, rate) in loads.items():
                for variant in variants:
                    phase = phases[load, variant]
                    cpu = time.process_time()
                    client = None if variant == "none" else MonitorClient(urls[variant], max_attempts=3)
                    timings, wall = run_phase(rows, calls, rate, client.send_row if client else None, spin_ns)
                    if client is not None:
                        client.close(timeout=10.0)
                        stats = client.stats()
                        if variant == "up" and stats.sent != stats.enqueued:
                            check_up()
                            raise RuntimeError(f"the monitor did not take every row: {stats}")
                        phase.add_stats(stats)
                    phase.cpu += time.process_time() - cpu
                    phase.timings += timings
                    phase.rates.append(calls / wall)

    print(
        f"\nper call, microseconds ({args.rounds} rounds; tight: {args.calls:,} calls back to back, "
        f"paced: {args.paced_calls:,} calls at {args.rate:,.0f}/s per phase)"
    )
    header = ["load", "client", "p50", "p99", "p99.9", "max", "+p50", "+p99", "+p99.9", "calls/s", "ratio"]
    print(f"{header[0]:6} {header[1]:6}" + "".join(f"{h:>9}" for h in header[2:]) + "  cpu us/call")
    for load in loads:
        base, base_p = phases[load, "none"], percentiles(phases[load, "none"].timings)
        for variant in variants:
            phase = phases[load, variant]
            p = percentiles(phase.timings)
            cells = [
                p["p50"],
                p["p99"],
                p["p99.9"],
                p["max"],
                *(p[q] - base_p[q] for q in ("p50", "p99", "p99.9")),
            ]
            print(
                f"{load:6} {variant:6}"
                + "".join(f"{c:9.2f}" if i < 4 else f"{c:+9.2f}" for i, c in enumerate(cells))
                + f"{phase.rate:9,.0f}{phase.rate / base.rate:9.3f}"
                + f"  {1e6 * phase.cpu / len(phase.timings):.2f}"
            )
    print("\nclient counters (all rounds; items)")
    for (load, variant), phase in phases.items():
        if phase.counters:
            print(f"{load:6} {variant:5} " + " ".join(f"{k}={v:,}" for k, v in phase.counters.items()))
    for load in loads:
        none, up, down = (phases[load, v] for v in variants)
        added = percentiles(up.timings)["p99"] - percentiles(none.timings)["p99"]
        print(
            f"\n{load}: added p99 with the monitor up {added:+.2f} us (target < 200 us); "
            f"throughput with the monitor down {down.rate / none.rate:.3f}x of no client (target 1.0), "
            f"{1e6 / down.rate - 1e6 / none.rate:+.2f} us wall per call"
        )


if __name__ == "__main__":
    main()
