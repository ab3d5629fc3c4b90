"""Attacks on the real server, measured by what they do to real ingestion, server by server side by side.

Each target is a server build: `name=kind:tree`, where `kind` is `uvicorn` (`python -m monitor_service
serve`, the shipped way) or `granian` (the same app on Granian, bench/granian_app.py; Granian is no
project dependency: `pip install --target DIR granian` and pass `--granian-path DIR`) and `tree` a
source tree of the project (e.g. an older commit unpacked with `git archive C | tar -x -C DIR`).
Every target runs with all three tokens set, the 20-column model of common.py and the process
executor; the attackers never hold a token unless said.

For every attack, on each target in turn, a real sender (wrk, 2 keep-alive connections, 100-row
JSON batches with the ingest token) runs for --duration seconds while the attacker runs, and the
table shows its 2xx answers per second, p50/p99 latency and errors, next to the same sender with
no attacker:

  none            no attack (the baseline)
  header-growth   one connection sends a header that never ends, 64 KiB at a time, as fast as the
                  server reads it
  header-memory   eight connections each send up to 128 MiB of one unfinished header; the server's
                  peak RSS is the figure
  slowloris       200 connections each send a partial header, then one more header line every 2 s
  slow-body       200 connections send complete headers (with the ingest token) announcing a 1 MB
                  body, then 1 byte every 2 s
  nested-body     two token holders post 16 MiB bodies of nested empty arrays back to back
  disconnect      token holders send half of a 1 MB body and hang up, 50 times; the figure is the
                  number of traceback lines the server logged
  fd-limit        the server runs with RLIMIT_NOFILE 150; 200 slowloris connections; the real
                  sender opens a new connection per request (`Connection: close`)

Per attack it also prints what the attacker saw: bytes the server read before answering or
closing, connections the server still held at the end, the answers it got.

    python bench/attacks.py --target before=uvicorn:/tmp/base --target after=uvicorn:. \
        [--target granian=granian:. --granian-path DIR] [--duration 10] [--attacks a,b,...]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml
from common import MODEL, children, frame, model_config, records, rss_mb
from wrkload import WrkResult, finish_wrk, run_wrk, start_wrk

TOKENS = {"ingest_token": "bench-ingest-token", "admin_token": "bench-admin-token", "metrics_token": "m-tok"}
PATH = f"/v1/models/{MODEL}/rows"
AUTH = {"Authorization": f"Bearer {TOKENS['ingest_token']}"}
BENCH_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    name: str
    kind: str
    tree: Path
    granian_path: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path = Path()

    @classmethod
    def parse(cls, text: str, granian_path: Path | None) -> Target:
        name, _, rest = text.partition("=")
        kind, _, tree = rest.partition(":")
        if kind not in ("uvicorn", "granian", "floor") or not tree:
            raise SystemExit(f"--target {text!r}: expected name=uvicorn|granian|floor:TREE")
        return cls(name, kind, Path(tree).resolve(), granian_path)

    def start(self, config: Path, workdir: Path, nofile: int | None = None) -> None:
        self.port = _free_port()
        self.log = workdir / f"server-{self.name}-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        if self.kind == "uvicorn":
            command = [sys.executable, "-m", "monitor_service", "serve", "--config", str(config)]
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        elif self.kind == "floor":
            env["PYTHONPATH"] = str(BENCH_DIR)
            command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--http", "httptools"]
            command += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
            command += ["--host", "127.0.0.1", "--port", str(self.port)]
        else:
            if self.granian_path is None:
                raise SystemExit("granian targets need --granian-path")
            env["PYTHONPATH"] = os.pathsep.join([str(self.tree), str(self.granian_path), str(BENCH_DIR)])
            env["DRIFT_MONITOR_CONFIG"] = str(config)
            command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            command += ["--runtime-threads", "1", "--loop", "uvloop", "--log-level", "warning"]
            command += ["--http", "1", "--http1-header-read-timeout", "10000", "--no-ws"]
            command += ["--http1-buffer-size", "65536", "granian_app:app"]

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.tree,
                preexec_fn=limit,
                start_new_session=True,  # its own process group: Granian's workers are stopped with it
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready")

    def stop(self) -> float | None:
        """SIGTERM the server's process group; SIGKILL it after 20 s. Returns the seconds it took to
        exit after SIGTERM (None when it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        group = self.process.pid  # start_new_session: the group id is the server's pid
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
            took: float | None = time.monotonic() - started
        except subprocess.TimeoutExpired:
            took = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever is left of the group (workers)
        self.process.wait()
        return took

    def rss_mb(self) -> float:
        """RSS of the server and its descendants (Granian serves from a child process)."""
        assert self.process is not None
        pids, total = [self.process.pid], 0.0
        while pids:
            pid = pids.pop()
            with contextlib.suppress(OSError):
                total += rss_mb(pid)
                pids.extend(children(pid))
        return total

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(workdir: Path) -> Path:
    reference = workdir / "reference.parquet"
    if not reference.exists():
        frame(10_000, seed=1).to_parquet(reference)
    config = {
        "server": {"executor": "process", "max_rows_per_request": 10_000, **TOKENS},
        "models": [model_config(reference, 20_000)],
    }
    path = workdir / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# --------------------------------------------------------------------------- attackers


@dataclass
class Seen:
    """What the attacker observed."""

    read_by_server: list[int] = field(default_factory=list)  # bytes sent per connection
    answers: Counter[str] = field(default_factory=Counter)
    held: int = 0  # connections still open (no answer, not closed) at the end
    opened: int = 0
    refused: int = 0  # connections that could not even be opened
    peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.opened:
            parts.append(f"{self.held}/{self.opened} held at end")
        if self.refused:
            parts.append(f"{self.refused} refused")
        if self.read_by_server:
            parts.append(f"server read {max(self.read_by_server) / 1024:,.0f} KiB max")
        if self.answers and not self.peak_rss_mb:
            parts.append("answers " + ", ".join(f"{k} x{n}" for k, n in self.answers.most_common(3)))
        if self.peak_rss_mb:
            parts.append(f"server RSS peak {self.peak_rss_mb:,.0f} MB")
        parts.extend(self.notes)
        return "; ".join(parts)


def _status_line(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line[9:12] if line.startswith("HTTP/") else (line[:20] or "closed")


class Conn:
    """A raw client socket that notices when the server answered and when it closed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.sent = 0
        self.answer: str | None = None  # the status of the server's answer, if any
        self.closed = False  # by the server (or reset)

    @property
    def outcome(self) -> str:
        return self.answer or ("reset/closed" if self.closed else "open")

    def poll(self) -> bool:
        """True while the server has neither answered nor closed."""
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
            elif self.answer is None:
                self.answer = _status_line(data)
        return self.answer is None and not self.closed

    def send(self, data: bytes, stop: threading.Event, deadline: float | None = None) -> bool:
        """Send all of `data` as fast as the server reads it; False when it answered or closed."""
        view = memoryview(data)
        while view:
            if stop.is_set() or (deadline and time.monotonic() > deadline) or not self.poll():
                return False
            _, writable, _ = select.select([], [self.sock], [], 0.2)
            if not writable:
                continue
            try:
                n = self.sock.send(view[:65536])
            except BlockingIOError:
                continue
            except OSError:
                self.closed = True
                return False
            self.sent += n
            view = view[n:]
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _request_head(extra: str = "", length: int | None = None, auth: bool = False) -> bytes:
    head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if auth:
        head += f"Authorization: Bearer {TOKENS['ingest_token']}\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + extra).encode()


def _finish(conns: list[Conn], seen: Seen) -> None:
    for conn in conns:
        conn.poll()
        seen.held += not conn.closed
        seen.answers[conn.outcome] += 1
        seen.read_by_server.append(conn.sent)
        conn.close()
    seen.opened = len(conns)


def header_growth(target: Target, stop: threading.Event, seen: Seen, limit: int = 1 << 62) -> None:
    conn = Conn(target.port)
    conn.send(_request_head("X-Grow: "), stop)
    chunk = b"a" * 65536
    while not stop.is_set() and conn.sent < limit and conn.send(chunk, stop):
        pass
    while not stop.is_set() and not conn.closed:  # hold the unfinished header until closed
        conn.poll()
        stop.wait(0.2)
    _finish([conn], seen)


def header_memory(target: Target, stop: threading.Event, seen: Seen) -> None:
    threads = [threading.Thread(target=header_growth, args=(target, stop, seen, 128 << 20)) for _ in range(8)]
    for thread in threads:
        thread.start()
    while not stop.is_set():
        seen.peak_rss_mb = max(seen.peak_rss_mb, target.rss_mb())
        stop.wait(0.2)
    for thread in threads:
        thread.join()
    seen.opened = len(threads)


def _open_many(target: Target, count: int, head: bytes, seen: Seen, stop: threading.Event) -> list[Conn]:
    conns = []
    for _ in range(count):
        try:
            conn = Conn(target.port)
        except OSError:
            seen.refused += 1
            continue
        conn.send(head, stop)
        conns.append(conn)
    return conns


LINGER = 45.0  # seconds the slow attackers go on after the phase, to see whether the server closes them


def _trickle(conns: list[Conn], data: bytes, stop: threading.Event, every: float, seen: Seen) -> None:
    """Send `data` on every open connection every `every` s, during the phase and then until the
    server closed them all (at most LINGER s more); note when the last one was closed."""
    started = time.monotonic()
    never = threading.Event()
    end: float | None = None
    while end is None or time.monotonic() < end:
        if stop.is_set() and end is None:
            end = time.monotonic() + LINGER
        for conn in conns:
            if not conn.closed:
                conn.poll()
                conn.send(data, never, deadline=time.monotonic() + 0.5)
        if all(conn.closed for conn in conns):
            seen.notes.append(f"all closed by the server after {time.monotonic() - started:.0f} s")
            return
        time.sleep(every)
    seen.notes.append(f"{sum(not c.closed for c in conns)} still open {time.monotonic() - started:.0f} s in")


def slowloris(target: Target, stop: threading.Event, seen: Seen, count: int = 200) -> None:
    conns = _open_many(target, count, _request_head("X-a: b\r\n"), seen, stop)
    _trickle(conns, b"X-b: c\r\n", stop, 2.0, seen)
    _finish(conns, seen)


def slow_body(target: Target, stop: threading.Event, seen: Seen, count: int = 200) -> None:
    conns = _open_many(target, count, _request_head("\r\n", length=1_000_000, auth=True), seen, stop)
    _trickle(conns, b" ", stop, 2.0, seen)
    _finish(conns, seen)


def nested_body_bytes(size: int = 16 * 1024 * 1024 - 64) -> bytes:
    prefix, suffix = b'{"rows": [{"num_00": [', b"]}]}"
    count = (size - len(prefix) - len(suffix)) // 3
    return prefix + b",".join([b"[]"] * count) + suffix


def nested_body(target: Target, stop: threading.Event, seen: Seen) -> None:
    body = nested_body_bytes()
    durations: list[float] = []

    def sender() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
                conn.request("POST", PATH, body=body, headers={**AUTH, "Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                seen.answers[str(response.status)] += 1
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                seen.answers[type(exc).__name__] += 1
            durations.append(time.perf_counter() - started)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if durations:
        seen.notes.append(f"{len(durations)} bodies, median {statistics.median(durations):.2f} s each")


def disconnect(target: Target, stop: threading.Event, seen: Seen, times: int = 50) -> None:
    before = target.log_text().count("Traceback")
    half = b"[" * 1 + b" " * 499_999
    for _ in range(times):
        if stop.is_set():
            break
        conn = Conn(target.port)
        conn.send(_request_head("\r\n", length=1_000_000, auth=True) + half, stop)
        conn.close()
        seen.opened += 1
        stop.wait(0.05)
    stop.wait(1.0)
    seen.notes.append(f"{target.log_text().count('Traceback') - before} tracebacks logged")


ATTACKS: dict[str, Callable[[Target, threading.Event, Seen], None] | None] = {
    "none": None,
    "header-growth": header_growth,
    "slowloris": slowloris,
    "slow-body": slow_body,
    "nested-body": nested_body,
    "disconnect": disconnect,
    "header-memory": header_memory,
    "fd-limit": slowloris,
}


# --------------------------------------------------------------------------- the real sender


def sender_bodies() -> list[bytes]:
    rows = records(frame(1000, seed=2, shifted=True))
    return [orjson.dumps({"rows": rows[i : i + 100]}) for i in range(0, 1000, 100)]


def run_attack(
    target: Target, attack: str, bodies: list[bytes], duration: float, workdir: Path
) -> tuple[WrkResult, Seen]:
    seen = Seen()
    stop = threading.Event()
    fn = ATTACKS[attack]
    thread = threading.Thread(target=fn, args=(target, stop, seen)) if fn else None
    if thread:
        thread.start()
        time.sleep(1.0)  # the attack is under way before the real sender starts
    headers = {**AUTH, "Content-Type": "application/json"}
    if attack == "fd-limit":
        headers["Connection"] = "close"
    wrk = start_wrk(
        f"http://127.0.0.1:{target.port}{PATH}",
        bodies,
        headers,
        duration=duration,
        connections=2,
        timeout=10,
        workdir=workdir,
    )
    result = finish_wrk(wrk)
    if target.process is not None and attack != "header-memory":
        seen.peak_rss_mb = max(seen.peak_rss_mb, 0.0)
    stop.set()
    if thread:
        thread.join(timeout=60)
    return result, seen


def ingest_comparison(targets: list[Target], rounds: int, duration: float, workdir: Path) -> None:
    """1,000-row JSON batches (20 columns) over 4 keep-alive connections, target by target in turn,
    `rounds` times; rows/s and the ratio to the floor target of the same round."""
    rows = records(frame(20_000, seed=3, shifted=True))
    bodies = [orjson.dumps({"rows": rows[i : i + 1000]}) for i in range(0, len(rows), 1000)]
    floor = next((t for t in targets if t.kind == "floor"), None)
    print(
        f"\ningest: 1,000-row JSON batches ({len(bodies[0]) / 1000:.0f} KB), wrk -t1 -c4, {duration:g} s each"
    )
    print(f"{'round':<6} " + " ".join(f"{t.name:>22}" for t in targets))
    ratios: dict[str, list[float]] = {t.name: [] for t in targets}
    for number in range(rounds):
        results = {}
        for target in targets:
            headers = {**AUTH, "Content-Type": "application/json"}
            url = f"http://127.0.0.1:{target.port}{PATH}"
            results[target.name] = run_wrk(
                url, bodies, headers, duration=duration, connections=4, workdir=workdir
            )
        base = results[floor.name].good_per_s if floor else 0.0
        cells = []
        for target in targets:
            r = results[target.name]
            ratio = r.good_per_s / base if base else float("nan")
            ratios[target.name].append(ratio)
            cells.append(f"{r.good_per_s * 1000:>10,.0f} rows/s {ratio:>4.2f}x")
        print(f"{number + 1:<6} " + " ".join(f"{c:>22}" for c in cells), flush=True)
    print(
        "median ratio to the floor: "
        + ", ".join(f"{n} {statistics.median(v):.2f}" for n, v in ratios.items())
    )


def _row(attack: str, target: str, r: WrkResult, seen: Seen) -> str:
    return (
        f"{attack:<14} {target:<10} {r.good_per_s:>8,.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
        f"{r.non_2xx:>6} {r.socket_errors:>6}  {seen.summary()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--target", action="append", required=True, help="name=uvicorn:TREE or name=granian:TREE"
    )
    parser.add_argument("--granian-path", type=Path, default=None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of real sending per attack")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated, or 'none' alone")
    parser.add_argument(
        "--ingest-rounds", type=int, default=3, help="rounds of the ingest comparison (0: skip)"
    )
    parser.add_argument("--ingest-duration", type=float, default=10.0)
    args = parser.parse_args()
    targets = [Target.parse(t, args.granian_path) for t in args.target]
    attacks = [a for a in args.attacks.split(",") if a]
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown:
        raise SystemExit(f"unknown attacks: {unknown}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"python {sys.version.split()[0]}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="drift-attacks-"))
    config = write_config(workdir)
    bodies = sender_bodies()
    print(
        f"real sender: wrk, 2 keep-alive connections, 100-row JSON batches ({len(bodies[0]) / 1000:.0f} KB), "
        f"{args.duration:g} s per phase; targets: "
        + ", ".join(f"{t.name} ({t.kind}, {t.tree})" for t in targets)
    )
    print(
        f"\n{'attack':<14} {'target':<10} {'2xx/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non2xx':>6} {'sockerr':>6}  attacker saw"
    )
    try:
        for target in targets:
            target.start(config, workdir)
        if args.ingest_rounds:
            ingest_comparison(targets, args.ingest_rounds, args.ingest_duration, workdir)
        for attack in attacks:
            for target in targets:
                if target.kind == "floor":
                    continue
                if attack in ("header-memory", "fd-limit"):  # a fresh server for each of these
                    target.stop()
                    target.start(config, workdir, nofile=150 if attack == "fd-limit" else None)
                result, seen = run_attack(target, attack, bodies, args.duration, workdir)
                if attack == "header-memory" and target.process is not None:
                    seen.notes.append(f"RSS after {target.rss_mb():,.0f} MB")
                print(_row(attack, target.name, result, seen), flush=True)
                if target.process is not None and target.process.poll() is not None:
                    print(f"  {target.name} died; restarting")
                    target.start(config, workdir)
                elif attack in ("header-memory", "fd-limit"):
                    target.stop()
                    target.start(config, workdir)
    finally:
        for target in targets:
            target.stop()
    print(f"\nserver logs in {workdir}")


if __name__ == "__main__":
    main()
