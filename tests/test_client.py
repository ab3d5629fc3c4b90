"""MonitorClient against a real loopback HTTP server whose behaviour each test switches.

The server (stdlib ThreadingHTTPServer on 127.0.0.1, port 0) records every request it answers and
can accept (202), hold requests until released (slower than the client's read timeout), fail the
first N requests with a status (500, 503, 429) then accept, reject every row (422), or validate
(422 naming the rows whose carat is not a number, as the real monitor names them; all or nothing).
"Down" is a port bound by a socket that never listens. Outcomes are awaited by polling with deadlines.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from monitor_service.client import ClientStats, MonitorClient


@dataclass
class Received:
    path: str
    authorization: str | None
    body: dict[str, Any]  # rows sent column by column are turned back into {"rows": [...]}
    headers: dict[str, str] = field(default_factory=dict)
    columnar: bool = False
    at: float = 0.0


@dataclass
class LoopbackMonitor:
    """What the fake monitor does (`mode`) and what it has answered."""

    mode: str = "accept"  # accept | hold | fail | reject | validate
    fail_status: int = 500
    retry_after: str | None = None  # sent with the failures when set
    fail_first: int = 0
    failures_served: int = 0
    received: list[Received] = field(default_factory=list)  # requests answered with 202
    arrived: int = 0  # requests that reached the handler, answered or not
    attempts: list[Received] = field(default_factory=list)  # every request, in arrival order
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def rows(self, path_suffix: str = "/rows") -> list[dict[str, Any]]:
        with self.lock:
            key = path_suffix.rsplit("/", 1)[1]
            return [row for r in self.received if r.path.endswith(path_suffix) for row in r.body[key]]

    def answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.arrived += 1
            self.attempts.append(request)
            if self.mode == "fail" and self.failures_served < self.fail_first:
                self.failures_served += 1
                return self.fail_status, {"detail": "try again"}
            items = next(iter(request.body.values()))
            if self.mode in ("reject", "validate"):  # all rows, or those whose carat is not a number
                invalid = [
                    {
                        "loc": ["body", "columns", "carat", i]
                        if request.columnar
                        else ["body", "rows", i, "carat"],
                        "msg": "bad carat",
                        "input": row.get("carat"),
                    }
                    for i, row in enumerate(items)
                    if self.mode == "reject" or not isinstance(row.get("carat"), float)
                ]
                if invalid:
                    return 422, {"detail": invalid, "error_count": len(invalid)}
        if self.mode == "hold":
            self.release.wait(10)
        with self.lock:
            self.received.append(request)
        return 202, {"model": request.path.split("/")[3], "accepted": len(items), "window_rows": 0}


def _handler(monitor: LoopbackMonitor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real server
        disable_nagle_algorithm = True  # else each answer waits for a delayed ACK (40 ms)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            body = json.loads(raw)
            columnar = "columns" in body
            if columnar:
                columns = body["columns"]
                count = len(next(iter(columns.values())))
                body = {"rows": [{name: values[i] for name, values in columns.items()} for i in range(count)]}
            request = Received(
                self.path,
                self.headers.get("Authorization"),
                body,
                dict(self.headers),
                columnar,
                time.monotonic(),
            )
            status, answer = monitor.answer(request)
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                if status >= 429 and monitor.retry_after is not None:
                    self.send_header("Retry-After", monitor.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client timed out and went away

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def monitor() -> Iterator[LoopbackMonitor]:
    state = LoopbackMonitor()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def down_url() -> Iterator[str]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def make_client() -> Iterator[Callable[..., MonitorClient]]:
    """Clients with test-friendly timings; all closed at teardown."""
    clients: list[MonitorClient] = []

    def make(url: str, **options: Any) -> MonitorClient:
        settings: dict[str, Any] = {"flush_interval": 0.05, "backoff": 0.01, "max_backoff": 0.05}
        clients.append(MonitorClient(url, **{**settings, **options}))
        return clients[-1]

    yield make
    for client in clients:
        client.close(timeout=1.0)


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


def _settled(stats: ClientStats) -> int:
    return stats.sent + stats.dropped_after_retries + stats.rejected


def _row(i: int) -> dict[str, Any]:
    return {"request_id": f"r-{i}", "carat": 0.3 + i / 1e4, "cut": "Ideal", "prediction": 500.0 + i}


def test_client_delivers_every_row_in_order_in_batches_of_at_most_batch_size(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url, batch_size=100)
    for i in range(1050):
        client.send_row("diamonds", _row(i))
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert stats == ClientStats(
        enqueued=1050, sent=1050, dropped_queue_full=0, dropped_closed=0, dropped_after_retries=0,
        rejected=0, retried=0, batches_sent=len(monitor.received),
    )  # fmt: skip
    assert stats.pending == 0
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(1050)]
    assert all(r.path == "/v1/models/diamonds/rows" for r in monitor.received)
    assert max(len(r.body["rows"]) for r in monitor.received) <= 100


def test_client_send_rows_sends_a_list_as_batches(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url, batch_size=64)
    client.send_rows("diamonds", [_row(i) for i in range(200)])
    client.send_rows("diamonds", (_row(i) for i in range(200, 250)))
    assert client.flush(timeout=5.0)
    assert client.stats().sent == 250
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(250)]
    assert max(len(r.body["rows"]) for r in monitor.received) <= 64


def test_client_sends_on_the_interval_without_flush(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url, batch_size=1000, flush_interval=0.1)
    client.send_row("diamonds", _row(0))
    _wait_until(lambda: client.stats().sent == 1, timeout=2.0)
    assert monitor.rows() == [_row(0)]


def test_client_sends_labels_to_the_labels_path_per_model(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url)
    client.send_labels("diamonds", [{"id": "r-1", "target": 498.0}, {"id": "r-2", "target": 12.5}])
    client.send_row("diamonds", _row(3))
    client.send_labels("churn v2", [{"id": 7, "target": "yes"}])
    assert client.flush(timeout=5.0)
    assert monitor.rows("/v1/models/diamonds/labels") == [
        {"id": "r-1", "target": 498.0},
        {"id": "r-2", "target": 12.5},
    ]
    assert monitor.rows("/v1/models/churn%20v2/labels") == [{"id": 7, "target": "yes"}]
    assert monitor.rows("/v1/models/diamonds/rows") == [_row(3)]
    assert client.stats().sent == 4


@pytest.mark.parametrize(("token", "header"), [("s3cret", "Bearer s3cret"), (None, None)])
def test_client_sends_the_bearer_token_when_given(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient], token: str | None, header: str | None
) -> None:
    client = make_client(monitor.url, token=token)
    client.send_row("diamonds", _row(0))
    client.send_labels("diamonds", [{"id": "r-0", "target": 1.0}])
    assert client.flush(timeout=5.0)
    assert [r.authorization for r in monitor.received] == [header, header]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_client_retries_429_and_5xx_and_counts_each_retry(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient], status: int
) -> None:
    monitor.mode, monitor.fail_status, monitor.fail_first = "fail", status, 3
    client = make_client(monitor.url, batch_size=10, max_attempts=5)
    for i in range(10):
        client.send_row("diamonds", _row(i))
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert stats.retried == monitor.failures_served == 3
    assert (stats.sent, stats.batches_sent, stats.dropped_after_retries) == (10, 1, 0)
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(10)]


def test_client_drops_and_counts_a_batch_when_retries_are_exhausted(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode, monitor.fail_first = "fail", 1_000_000
    client = make_client(monitor.url, batch_size=10, max_attempts=3)
    client.send_rows("diamonds", [_row(i) for i in range(25)])
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert monitor.failures_served == 9  # 3 batches, 3 attempts each
    assert (stats.retried, stats.dropped_after_retries, stats.sent) == (6, 25, 0)
    assert _settled(stats) == stats.enqueued == 25


def test_client_never_retries_a_422_and_logs_its_detail_once(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient], caplog: pytest.LogCaptureFixture
) -> None:
    monitor.mode = "reject"
    client = make_client(monitor.url, batch_size=10)
    with caplog.at_level(logging.DEBUG, logger="monitor_service.client"):
        client.send_rows("diamonds", [_row(i) for i in range(30)])
        assert client.flush(timeout=5.0)
    stats = client.stats()
    assert (stats.rejected, stats.retried, stats.sent, stats.dropped_after_retries) == (30, 0, 0, 0)
    assert monitor.arrived == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "HTTP 422" in warnings[0] and "bad carat" in warnings[0]


def test_client_resends_only_the_valid_rows_of_a_batch_rejected_in_part(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode = "validate"
    client = make_client(monitor.url, batch_size=10)
    rows = [_row(i) if i not in (2, 7) else {**_row(i), "carat": "heavy"} for i in range(10)]
    client.send_rows("diamonds", rows)
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.retried, stats.batches_sent) == (8, 2, 0, 1)
    assert monitor.arrived == 2
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(10) if i not in (2, 7)]


def test_client_send_row_returns_at_once_while_the_server_is_slow(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode = "hold"  # answers only after the client's read timeout
    client = make_client(monitor.url, batch_size=100, read_timeout=0.2, max_attempts=2)
    started = time.perf_counter()
    for i in range(10_000):
        client.send_row("diamonds", _row(i))
    assert time.perf_counter() - started < 1.0
    assert client.stats().enqueued + client.stats().dropped_queue_full == 10_000
    _wait_until(lambda: client.stats().retried >= 1)  # a read timed out
    monitor.release.set()  # held requests get their late answer, later ones an answer at once
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert stats.sent + stats.dropped_after_retries == stats.enqueued
    assert stats.sent > 0
    # at least once: the monitor may also have stored batches whose answer came too late
    timed_out_rows = 100 * stats.retried + stats.dropped_after_retries
    assert stats.sent <= len(monitor.rows()) <= stats.sent + timed_out_rows


def test_client_send_row_returns_at_once_while_the_server_is_down(
    down_url: str, make_client: Callable[..., MonitorClient]
) -> None:
    # no interval sends: every batch but the last (sent by flush) holds exactly 1,000 rows
    client = make_client(down_url, batch_size=1000, max_attempts=3, flush_interval=60.0)
    started = time.perf_counter()
    for i in range(10_000):
        client.send_row("diamonds", _row(i))
    assert time.perf_counter() - started < 1.0
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert stats.enqueued + stats.dropped_queue_full == 10_000
    assert stats.sent == 0
    assert stats.dropped_after_retries == stats.enqueued == _settled(stats)
    assert stats.retried == 2 * math.ceil(stats.enqueued / 1000)


def test_client_counts_queue_full_drops_exactly(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode = "hold"
    client = make_client(monitor.url, batch_size=1, max_queue=5, read_timeout=5.0)
    client.send_row("diamonds", _row(0))
    _wait_until(lambda: monitor.arrived == 1)  # the sender is now stuck in that request
    for i in range(1, 101):
        client.send_row("diamonds", _row(i))
    stats = client.stats()
    assert (stats.enqueued, stats.dropped_queue_full) == (6, 95)
    monitor.release.set()
    assert client.flush(timeout=5.0)
    assert client.stats().sent == 6
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(6)]


def test_client_flush_and_close_return_within_their_timeout(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode = "hold"
    client = make_client(monitor.url, batch_size=10, read_timeout=5.0)
    client.send_rows("diamonds", [_row(i) for i in range(50)])
    started = time.monotonic()
    assert not client.flush(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 1.0
    started = time.monotonic()
    assert not client.close(timeout=0.3)
    assert time.monotonic() - started < 1.0
    monitor.release.set()  # the request in flight completes; the rest were dropped at close
    _wait_until(lambda: client.stats().pending == 0)
    stats = client.stats()
    assert stats.sent == len(monitor.rows()) == 10
    assert stats.dropped_after_retries == 40


def test_client_close_is_idempotent_and_later_sends_are_dropped_and_counted(
    monitor: LoopbackMonitor,
) -> None:
    with MonitorClient(monitor.url, flush_interval=0.05) as client:
        client.send_row("diamonds", _row(0))
    started = time.monotonic()
    assert client.close(timeout=1.0)
    assert client.close(timeout=1.0)
    assert time.monotonic() - started < 0.5
    client.send_row("diamonds", _row(1))
    client.send_rows("diamonds", [_row(2), _row(3)])
    client.send_labels("diamonds", [{"id": "r-1", "target": 1.0}])
    assert client.flush(timeout=0.1)
    stats = client.stats()
    assert (stats.enqueued, stats.sent, stats.dropped_closed) == (1, 1, 4)
    assert len(monitor.rows()) == 1


def test_client_survives_bad_input_without_raising(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    def broken() -> Iterator[dict[str, Any]]:
        yield _row(0)
        raise RuntimeError("the caller's generator broke")

    client = make_client(monitor.url)
    client.send_rows("diamonds", broken())
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    client.send_row("diamonds", {"carat": math.nan, "x": math.inf, "at": when, "odd": object(), "ok": 1})
    assert client.flush(timeout=5.0)
    [row] = monitor.rows()
    assert row["carat"] is None and row["x"] is None and row["ok"] == 1
    assert row["at"] == "2024-05-01T12:00:00+00:00"
    assert row["odd"].startswith("<object object")
    assert client.stats().enqueued == 1


def test_client_counts_exactly_with_many_caller_threads(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url, batch_size=250)

    def caller(offset: int) -> None:
        for i in range(offset, offset + 1000):
            client.send_row("diamonds", _row(i))

    threads = [threading.Thread(target=caller, args=(1000 * t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=5.0)
    assert client.stats().sent == 8000
    assert sorted(int(row["request_id"][2:]) for row in monitor.rows()) == list(range(8000))


def test_client_works_from_asyncio_handlers_without_awaiting(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url)

    async def handle(i: int) -> float:
        prediction = 500.0 + i
        client.send_row("diamonds", {**_row(i), "prediction": prediction})
        return prediction

    async def serve() -> list[float]:
        return await asyncio.gather(*(handle(i) for i in range(100)))

    assert len(asyncio.run(serve())) == 100
    assert client.flush(timeout=5.0)
    assert len(monitor.rows()) == 100


def test_client_rejects_bad_settings_listing_each() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0") as error:
        MonitorClient("127.0.0.1:8000", batch_size=0, read_timeout=-1.0)
    assert "read_timeout must be > 0 seconds, got -1.0" in str(error.value)
    assert "base_url must start with http:// or https://, got '127.0.0.1:8000'" in str(error.value)


def test_client_module_imports_nothing_server_side() -> None:
    code = (
        "import sys, monitor_service.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'pydantic', 'evidently', 'pandas', 'numpy', 'orjson', 'uvicorn'}))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_client_sends_large_batches_column_by_column_and_gzip_compressed(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url, batch_size=300, columnar_rows=100, gzip_bytes=5000)
    client.send_rows("diamonds", [_row(i) for i in range(300)])
    client.send_rows("diamonds", [_row(i) for i in range(300, 350)])  # a small batch: rows, plain
    assert client.flush(timeout=5.0)
    first, second = monitor.received
    assert first.columnar and first.headers["Content-Encoding"] == "gzip"
    assert not second.columnar and "Content-Encoding" not in second.headers
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(350)]
    assert monitor.rows()[7] == _row(7)


def test_client_sends_rows_when_their_columns_differ(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url, batch_size=200, columnar_rows=10)
    rows = [_row(i) for i in range(200)]
    del rows[50]["cut"]  # a missing column must stay missing (a 422), not become a null
    client.send_rows("diamonds", rows)
    assert client.flush(timeout=5.0)
    assert not monitor.received[0].columnar
    assert "cut" not in monitor.rows()[50]


def test_client_resends_only_the_valid_rows_of_a_columnar_batch(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode = "validate"
    client = make_client(monitor.url, batch_size=100, columnar_rows=50)
    rows = [_row(i) if i not in (3, 60) else {**_row(i), "carat": "heavy"} for i in range(100)]
    client.send_rows("diamonds", rows)
    assert client.flush(timeout=5.0)
    stats = client.stats()
    assert (stats.sent, stats.rejected) == (98, 2)
    assert monitor.attempts[0].columnar
    assert [row["request_id"] for row in monitor.rows()] == [f"r-{i}" for i in range(100) if i not in (3, 60)]


def test_client_keeps_one_idempotency_key_per_batch_across_retries(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode, monitor.fail_status, monitor.fail_first = "fail", 503, 2
    client = make_client(monitor.url, batch_size=10, max_attempts=5)
    client.send_rows("diamonds", [_row(i) for i in range(20)])
    assert client.flush(timeout=5.0)
    keys = [attempt.headers["Idempotency-Key"] for attempt in monitor.attempts]
    assert len(keys) == 4  # the first batch three times, the second once
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert len(keys[0]) == 32


def test_client_waits_as_long_as_retry_after_says(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    monitor.mode, monitor.fail_status, monitor.fail_first, monitor.retry_after = "fail", 429, 1, "1"
    client = make_client(monitor.url, batch_size=10, max_attempts=2)  # backoff alone: 0.01 s
    client.send_rows("diamonds", [_row(i) for i in range(10)])
    assert client.flush(timeout=5.0)
    assert client.stats().sent == 10
    first, second = monitor.attempts
    assert second.at - first.at >= 0.9  # the client's own backoff would have retried after ~0.01 s


def test_client_never_logs_credentials_from_its_url_and_sends_them_as_basic_auth(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient], caplog: pytest.LogCaptureFixture
) -> None:
    monitor.mode = "reject"
    url = monitor.url.replace("http://", "http://ops:pa%3Ass-w0rd@")
    with caplog.at_level(logging.DEBUG, logger="monitor_service.client"):
        client = make_client(url, batch_size=10, max_attempts=2)
        client.send_rows("diamonds", [_row(i) for i in range(10)])
        assert client.flush(timeout=5.0)
        down = make_client("http://ops:pa%3Ass-w0rd@127.0.0.1:9/", max_attempts=2)
        down.send_row("diamonds", _row(0))
        assert down.flush(timeout=5.0)
    assert client.stats().rejected == 10 and down.stats().dropped_after_retries == 1
    basic = "Basic " + base64.b64encode(b"ops:pa:ss-w0rd").decode()
    assert [r.authorization for r in monitor.attempts] == [basic]
    logged = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "HTTP 422" in logged and "dropped after 2 attempts" in logged
    assert "pa%3Ass" not in logged and "pa:ss" not in logged and "ops:" not in logged
    with pytest.raises(ValueError) as error:
        MonitorClient("ftp://ops:secret@host")
    assert "ftp://***@host" in str(error.value) and "secret" not in str(error.value)


def test_client_prefers_the_token_over_credentials_in_its_url(
    monitor: LoopbackMonitor, make_client: Callable[..., MonitorClient]
) -> None:
    client = make_client(monitor.url.replace("http://", "http://ops:pw@"), token="s3cret")
    client.send_row("diamonds", _row(0))
    assert client.flush(timeout=5.0)
    assert [r.authorization for r in monitor.received] == ["Bearer s3cret"]
