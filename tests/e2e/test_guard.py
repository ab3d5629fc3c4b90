"""Bounded requests before authentication, against the real server process on loopback.

Each test attacks as issue 8 measured it (a growing header, many headers, slow heads and bodies,
more connections than allowed, clients that hang up mid-body, a taken port) and asserts what the
server answers or closes, within a bounded number of bytes, connections and seconds; never how
fast it is.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import diamonds_model, rows_of, write_config
from tests.support.processes import RunningProcess, free_port, poll_until, start_monitor, start_process

pytestmark = pytest.mark.integration

TOKEN = "guard-test-ingest-token"
MAX_HEADERS = 30
MAX_CONNECTIONS = 40
LIMITS: dict[str, object] = {
    "max_header_bytes": 8192,
    "max_headers": MAX_HEADERS,
    "header_timeout": "1s",
    "body_timeout": "1s",
    "max_connections": MAX_CONNECTIONS,
    "keep_alive_timeout": "1s",
}
ROWS = "/v1/models/diamonds/rows"


@dataclass
class Server:
    process: RunningProcess
    port: int


def _start(tmp: Path) -> Server:
    config = write_config(tmp / "monitor.yaml", [diamonds_model()], ingest_token=TOKEN, **LIMITS)
    port = free_port()
    return Server(start_monitor(config, port, tmp / "monitor.log", ready_path="/healthz", timeout=60), port)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = _start(tmp_path_factory.mktemp("guard"))
    yield running
    assert running.process.stop(timeout=20) == 0, running.process.log_tail()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own, for tests that read what the log says from the start."""
    running = _start(tmp_path)
    yield running
    assert running.process.stop(timeout=20) == 0, running.process.log_tail()


class Raw:
    """A raw client connection: send bytes, read whatever the server answers, notice its close."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.received = b""
        self.closed = False

    def send(self, data: bytes) -> bool:
        """False when the server has closed (or reset) the connection."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            return False
        return True

    def read_available(self, wait: float = 0.0) -> None:
        self.sock.settimeout(wait if wait > 0 else 0.000001)
        with contextlib.suppress(TimeoutError, BlockingIOError):
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except ConnectionResetError:
                    self.closed = True
                    return
                if not data:
                    self.closed = True
                    return
                self.received += data

    @property
    def status(self) -> int | None:
        if self.received.startswith(b"HTTP/1.1 "):
            return int(self.received[9:12])
        return None

    def close(self) -> None:
        self.sock.close()


def _head(extra: bytes = b"", *, length: int | None = None, token: bool = False) -> bytes:
    head = b"POST " + ROWS.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if token:
        head += b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    if length is not None:
        head += b"Content-Length: %d\r\n" % length
    return head + extra


def _post_rows(port: int, count: int = 3) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{port}{ROWS}",
        json={"rows": rows_of("production", count)},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


def test_guard_answers_431_to_a_header_that_keeps_growing(server: Server) -> None:
    conn = Raw(server.port)
    conn.send(_head(b"X-Grow: "))
    chunk = b"a" * 16384
    for _ in range(512):  # at most 8 MiB; today's server reads all of it and answers nothing
        if not conn.send(chunk):
            break
        conn.read_available()
        if conn.closed or conn.status:
            break
    conn.read_available(wait=2.0)
    assert conn.status == 431 or (conn.closed and conn.received == b"")
    poll_until(lambda: conn.read_available(0.2) or conn.closed, timeout=5, message="the server closes")
    conn.close()
    assert _post_rows(server.port).status_code == 202


def test_guard_answers_431_to_too_many_headers(server: Server) -> None:
    headers = {f"X-H{i}": "v" for i in range(MAX_HEADERS + 5)}
    response = requests.post(f"http://127.0.0.1:{server.port}{ROWS}", data=b"{}", headers=headers, timeout=10)
    assert response.status_code == 431
    assert response.headers["connection"] == "close"


def test_guard_answers_408_to_a_slow_head(server: Server) -> None:
    conn = Raw(server.port)
    conn.send(_head(b"X-A: b\r\n"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and conn.send(b"X-B: c\r\n"):  # a line every 0.2 s, forever
        conn.read_available(wait=0.2)
        if conn.status or conn.closed:
            break
    conn.read_available(wait=1.0)
    assert conn.status == 408, conn.received
    assert b"request head not complete" in conn.received
    conn.close()


def test_guard_closes_a_connection_that_sends_nothing(server: Server) -> None:
    conn = Raw(server.port)
    poll_until(lambda: conn.read_available(0.2) or conn.closed, timeout=10, message="the server closes")
    assert conn.received == b""
    conn.close()


def test_guard_answers_408_to_a_slow_body(server: Server) -> None:
    conn = Raw(server.port)
    conn.send(_head(b"\r\n", length=10_000, token=True) + b'{"rows": [')
    poll_until(lambda: conn.read_available(0.2) or conn.status, timeout=10, message="an answer")
    assert conn.status == 408, conn.received
    assert b"request body not complete" in conn.received
    poll_until(lambda: conn.read_available(0.2) or conn.closed, timeout=5, message="the server closes")
    conn.close()


def test_guard_closes_idle_keep_alive_connections(server: Server) -> None:
    body = b'{"rows": []}'
    conn = Raw(server.port)
    conn.send(_head(b"\r\n", length=len(body), token=True) + body)
    poll_until(lambda: conn.read_available(0.2) or conn.status, timeout=10, message="an answer")
    assert conn.status == 422
    # keep_alive_timeout is 1 s here (uvicorn's default, 5 s, would not close it within the bound)
    poll_until(lambda: conn.read_available(0.2) or conn.closed, timeout=4, message="the server closes")
    conn.close()


def test_guard_slowloris_connections_are_all_closed_and_real_clients_served(server: Server) -> None:
    conns = [Raw(server.port) for _ in range(30)]
    for conn in conns:
        conn.send(_head(b"X-A: b\r\n"))

    def all_closed() -> bool:
        for conn in conns:
            if not conn.closed:
                conn.send(b"X-B: c\r\n")
                conn.read_available()
        return all(c.closed for c in conns)

    assert _post_rows(server.port).status_code == 202  # served while they are held
    poll_until(all_closed, timeout=15, interval=0.2, message="every slowloris connection closed")
    assert all(c.status in (408, None) for c in conns)
    for conn in conns:
        conn.close()


def test_guard_caps_connections_and_makes_room_for_real_clients(server: Server) -> None:
    cap = MAX_CONNECTIONS
    conns = [Raw(server.port) for _ in range(cap + 20)]
    for conn in conns:
        conn.send(_head(b"X-A: b\r\n"))
    for conn in conns:
        conn.read_available(wait=0.05)
    refused = [c for c in conns if c.status == 503]
    assert refused, "connections over the cap must be refused"
    assert all(b"retry-after: 1" in c.received.lower() for c in refused)
    assert sum(not c.closed for c in conns) <= cap
    time.sleep(1.2)  # the held heads are now over a second old: a new client may take their place
    assert _post_rows(server.port).status_code == 202
    for conn in conns:
        conn.close()


def test_guard_client_hanging_up_mid_body_logs_no_traceback(fresh_server: Server) -> None:
    server = fresh_server
    for _ in range(20):
        conn = Raw(server.port)
        conn.send(_head(b"\r\n", length=100_000, token=True) + b'{"rows": [' + b" " * 50_000)
        conn.close()
    assert _post_rows(server.port).status_code == 202
    poll_until(
        lambda: "disconnected before sending" in server.process.log(),
        timeout=10,
        message="the disconnect logged",
    )
    log = server.process.log()
    assert "Traceback" not in log
    assert log.count("disconnected before sending") == 1


def test_guard_port_taken_fails_fast_without_claiming_ready(tmp_path: Path) -> None:
    config = write_config(tmp_path / "monitor.yaml", [diamonds_model()])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [sys.executable, "-m", "monitor_service", "serve", "--config", str(config)]
        args += ["--host", "127.0.0.1", "--port", str(port)]
        process = start_process("monitor", args, tmp_path / "taken.log", cwd=Path(__file__).parents[2])
        code = process.popen.wait(timeout=60)
    log = process.log()
    assert code == 3, log
    assert f"cannot listen on 127.0.0.1 port {port}" in log
    assert "drift monitor ready" not in log


def test_guard_logs_ready_with_the_address_once_listening(server: Server) -> None:
    log = server.process.log()
    assert f"drift monitor ready on http://127.0.0.1:{server.port}: models diamonds" in log
    assert log.count("drift monitor ready") == 1
