"""MonitorClient: send inference rows and labels to the drift monitor without ever slowing the caller.

Only the standard library and `requests` are imported, so an ML service can use this module without
installing (or importing) any of the server's dependencies.

    client = MonitorClient("http://127.0.0.1:8000", token=os.environ.get("DRIFT_MONITOR_INGEST_TOKEN"))
    client.send_row("diamonds", {"request_id": "r-1", "carat": 0.31, ..., "prediction": 512.0})
    client.send_labels("diamonds", [{"id": "r-1", "target": 498.0}])
    client.close()  # at shutdown: sends what is left for up to `timeout` seconds

`send_row`, `send_rows` and `send_labels` only put the items into a bounded in-memory queue
(`put_nowait`) and return: they never wait for the network, never raise and are thread-safe. A
background daemon thread takes the items off the queue, batches them per model and kind (rows or
labels) and POSTs a batch when it holds `batch_size` items or every `flush_interval` seconds.
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter, at most
`max_attempts` tries in all; a 429 or 503 that says `Retry-After` is retried after that many seconds
instead (at most `max_retry_after`). Every batch carries an `Idempotency-Key` header, the same on
each retry of it, so a monitor in cluster mode stores a retried batch once. Any other 4xx is not retried: the
batch counts as `rejected` and the response detail is logged (at WARNING once per model, kind and
status, then at DEBUG). As the monitor stores all rows of a request or none, when a 422 names the
invalid items, only those are rejected and the others are sent once more, in a new request without
them (with a new key). Items are dropped and counted, never retried forever, when the queue is full,
the retries are exhausted or the client is closed: monitoring is best effort, and a monitor that is
down never hurts the service.
Delivery is at least once: a batch whose answer timed out may have been stored, and is sent again.

Batches of at least `columnar_rows` rows that all have the same columns are sent column by column
(`{"columns": {name: [values]}}`: less to encode, send and parse), and bodies of at least
`gzip_bytes` bytes are gzip-compressed (`Content-Encoding: gzip`, level 1: cheap for the sender,
a third or less of the bytes on the wire).

Items are not copied: do not change a row after handing it over. The sender thread encodes them as
JSON: numpy scalars and arrays (anything with `.tolist()`) become lists and numbers, dates and
datetimes ISO 8601 strings, other unknown objects strings, and NaN or infinite floats null (the
monitor counts nulls as missing values).

asyncio: call `send_row` directly in the handler. Nothing awaits, it costs microseconds and touches
no socket, so there is no need for `run_in_executor`. At shutdown, `close()` blocks for at most its
timeout: from a running loop use `await asyncio.to_thread(client.close, 5.0)`.

Processes: create the client after any `fork()` (per gunicorn worker, not in a preloaded app); the
sender thread does not survive a fork.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import queue
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

log = logging.getLogger(__name__)

Kind = Literal["rows", "labels"]
_Key = tuple[str, Kind]
_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of the client's counters, in items (rows or labels) unless said otherwise.

    Every item handed to `send_*` is counted once in `enqueued`, `dropped_queue_full` or
    `dropped_closed`. Every enqueued item is `pending` until counted once in `sent`, `rejected` or
    `dropped_after_retries`, so after a successful `flush()`: sent + rejected +
    dropped_after_retries == enqueued.
    """

    enqueued: int  # accepted into the queue
    sent: int  # delivered, answered with a 2xx
    dropped_queue_full: int  # not accepted: the queue was full
    dropped_closed: int  # not accepted: handed in after close()
    dropped_after_retries: int  # retries exhausted, or still unsent when close() gave up
    rejected: int  # answered with a 4xx other than 429 (or not encodable as JSON): never retried
    retried: int  # retry attempts, in HTTP requests
    batches_sent: int  # HTTP requests answered with a 2xx

    @property
    def pending(self) -> int:
        """Enqueued items not yet sent, rejected or dropped."""
        return self.enqueued - self.sent - self.rejected - self.dropped_after_retries


class _BearerAuth(requests.auth.AuthBase):
    """Adds the bearer token; set as `Session.auth`, it also keeps ~/.netrc from replacing it."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request


def _split_credentials(base_url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without `user:password@`, and those credentials (percent-decoded) if it had any."""
    parts = urlsplit(base_url)
    if "@" not in parts.netloc:
        return base_url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), (unquote(user), unquote(password))


def redact_url(url: str) -> str:
    """The URL with any `user:password@` replaced by `***@`, for logs and error messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


class MonitorClient:
    """Non-blocking, thread-safe sender of rows and labels to one drift monitor (see the module doc).

    base_url         the monitor, e.g. "http://127.0.0.1:8000"; `user:password@` in it is sent as
                     basic auth when no token is given, and never appears in logs or errors
    token            bearer token for ingestion (`server.ingest_token`), if the monitor requires one
    batch_size       items per POST at most (the monitor's `max_rows_per_request` is 10,000)
    flush_interval   seconds an item waits at most for its batch to fill up
    max_queue        items held at most; beyond, send_* drop and count (memory stays bounded)
    connect_timeout, read_timeout   seconds, per HTTP attempt
    max_attempts     HTTP attempts per batch, the first one included
    backoff, max_backoff            first retry delay and its cap, in seconds (doubling, jittered)
    max_retry_after  longest wait, in seconds, a 429/503 `Retry-After` may ask for (longer: this)
    columnar_rows    batches of at least this many rows with the same columns go column by column
    gzip_bytes       bodies of at least this many bytes are sent gzip-compressed (0: never)
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        max_attempts: int = 4,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        max_retry_after: float = 30.0,
        columnar_rows: int = 100,
        gzip_bytes: int = 32 * 1024,
    ) -> None:
        counts = {
            "batch_size": batch_size,
            "max_queue": max_queue,
            "max_attempts": max_attempts,
            "columnar_rows": columnar_rows,
        }
        seconds = {
            "flush_interval": flush_interval,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "backoff": backoff,
            "max_backoff": max_backoff,
            "max_retry_after": max_retry_after,
        }
        bad = [f"{name} must be at least 1, got {value!r}" for name, value in counts.items() if value < 1]
        bad += [
            f"{name} must be > 0 seconds, got {value!r}" for name, value in seconds.items() if not value > 0
        ]
        if gzip_bytes < 0:
            bad.append(f"gzip_bytes must be >= 0, got {gzip_bytes!r}")
        if not base_url.startswith(("http://", "https://")):
            bad.append(f"base_url must start with http:// or https://, got {redact_url(base_url)!r}")
        if bad:
            raise ValueError("; ".join(bad))
        clean_url, credentials = _split_credentials(base_url)
        self._base_url = clean_url.rstrip("/")  # never holds credentials: it goes into log lines
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._timeouts = (connect_timeout, read_timeout)
        self._max_attempts = max_attempts
        self._backoff = (backoff, max_backoff)
        self._max_retry_after = max_retry_after
        self._columnar_rows = columnar_rows
        self._gzip_bytes = gzip_bytes
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._lock = threading.Lock()  # guards the counters below; items enter the queue under it
        self._settled_changed = threading.Condition(self._lock)
        self._enqueued = self._sent = self._rejected = self._retried = self._batches = 0
        self._dropped_full = self._dropped_closed = self._dropped_retries = 0
        self._settled = 0  # every item whose sequence number (1, 2, ...) is <= this is settled
        self._flush_target = 0
        self._closed = False
        self._stop = threading.Event()
        self._wakeup = threading.Event()  # set when a batch is waiting, on flush() and on close()
        self._logged: set[tuple[str, Kind, int | str]] = set()
        self._session = requests.Session()
        if token:
            self._session.auth = _BearerAuth(token)
        elif credentials is not None:  # e.g. a proxy with basic auth in front of the monitor
            self._session.auth = requests.auth.HTTPBasicAuth(*credentials)
        self._thread = threading.Thread(target=self._run, name="drift-monitor-client", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the caller's side: never blocks

    def send_row(self, model: str, row: Mapping[str, Any]) -> None:
        """Queue one inference row (features, prediction, optionally id, timestamp, target)."""
        with self._lock:  # the hot path: about a microsecond (bench/client_overhead.py)
            self._offer((model, "rows"), row)

    def send_rows(self, model: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Queue rows; when the queue fills up midway, the rest are dropped and counted."""
        self._put(model, "rows", rows)

    def send_labels(self, model: str, labels: Iterable[Mapping[str, Any]]) -> None:
        """Queue delayed labels, `{"id": ..., "target": ...}` each, for POST .../labels."""
        self._put(model, "labels", labels)

    def _put(self, model: str, kind: Kind, items: Iterable[Mapping[str, Any]]) -> None:
        try:
            batch = items if isinstance(items, Sequence) else list(items)
        except Exception:  # e.g. a generator that raises: the caller's request must go on
            log.debug("drift monitor client: could not read the %s for %s", kind, model, exc_info=True)
            return
        key: _Key = (model, kind)
        with self._lock:
            for item in batch:
                self._offer(key, item)

    def _offer(self, key: _Key, item: Any) -> None:
        """Queue one item or count it as dropped. Called with the lock held; never raises."""
        if self._closed:
            self._dropped_closed += 1
        elif len(self._queue.queue) >= self._queue.maxsize:  # cheaper than raising queue.Full
            self._dropped_full += 1
        else:
            try:
                self._queue.put_nowait((self._enqueued + 1, key, item))
            except queue.Full:  # cannot happen (other producers wait for the lock), but never raise
                self._dropped_full += 1
                return
            self._enqueued += 1
            # Wake the sender only when a batch may be full: a wake-up per item costs a syscall.
            if len(self._queue.queue) >= self._batch_size and not self._wakeup.is_set():
                self._wakeup.set()

    def stats(self) -> ClientStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return ClientStats(
                enqueued=self._enqueued,
                sent=self._sent,
                dropped_queue_full=self._dropped_full,
                dropped_closed=self._dropped_closed,
                dropped_after_retries=self._dropped_retries,
                rejected=self._rejected,
                retried=self._retried,
                batches_sent=self._batches,
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Send now and wait until everything enqueued so far is settled; False when `timeout` ran out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._enqueued
            if self._settled >= target:
                return True
            self._flush_target = max(self._flush_target, target)
        self._wakeup.set()
        with self._settled_changed:
            return self._settled_changed.wait_for(
                lambda: self._settled >= target, max(0.0, deadline - time.monotonic())
            )

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse new items, flush for up to `timeout`, drop what is left and stop the sender thread.

        Idempotent. Returns True when everything was settled and the thread has stopped in time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
        flushed = self.flush(timeout)
        self._stop.set()
        self._wakeup.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return flushed and not self._thread.is_alive()

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ the sender thread

    def _run(self) -> None:
        buffers: dict[_Key, list[Any]] = {}
        drained = 0  # sequence number of the last item taken off the queue
        next_tick = time.monotonic() + self._flush_interval
        try:
            while not self._stop.is_set():
                self._wakeup.wait(max(0.0, next_tick - time.monotonic()))
                self._wakeup.clear()  # before draining, so that no wake-up for a later item is lost
                drained = self._drain(buffers, drained)
                with self._lock:
                    flushing = self._flush_target > self._settled
                now = time.monotonic()
                send_all = flushing or now >= next_tick
                if send_all:
                    next_tick = now + self._flush_interval
                for key, items in list(buffers.items()):
                    while items and (len(items) >= self._batch_size or send_all) and not self._stop.is_set():
                        self._send(key, items[: self._batch_size])
                        del items[: self._batch_size]
                    if not items:
                        del buffers[key]
                if not buffers:
                    with self._settled_changed:
                        self._settled = drained
                        self._settled_changed.notify_all()
        finally:
            self._abandon(buffers)

    def _drain(self, buffers: dict[_Key, list[Any]], drained: int) -> int:
        """Move every queued item into the per-(model, kind) buffers; returns the last sequence number."""
        with self._queue.mutex:  # all at once: a get_nowait() per item would cost the GIL ~1 us each
            items = list(self._queue.queue)
            self._queue.queue.clear()
            self._queue.not_full.notify_all()
        for _seq, key, payload in items:
            buffers.setdefault(key, []).append(payload)
        return items[-1][0] if items else drained

    def _abandon(self, buffers: dict[_Key, list[Any]]) -> None:
        """On stop: count what is still buffered or queued as dropped, settle all, close the session."""
        self._drain(buffers, 0)
        left = sum(len(items) for items in buffers.values())
        with self._settled_changed:
            self._dropped_retries += left
            self._settled = self._enqueued
            self._settled_changed.notify_all()
        if left:
            log.warning("drift monitor client: closed with %d items unsent, dropped", left)
        self._session.close()

    def _send(self, key: _Key, batch: list[Any]) -> None:
        outcome, invalid = self._deliver(key, batch)
        if outcome == "rejected" and 0 < len(invalid) < len(batch):
            # The monitor stores all rows of a request or none: send the valid ones again, once.
            valid = [item for i, item in enumerate(batch) if i not in invalid]
            self._count("rejected", len(batch) - len(valid))
            batch, (outcome, _) = valid, self._deliver(key, valid)
        self._count(outcome, len(batch))

    def _count(self, outcome: str, items: int) -> None:
        with self._lock:
            if outcome == "sent":
                self._sent += items
                self._batches += 1
            elif outcome == "rejected":
                self._rejected += items
            else:
                self._dropped_retries += items

    def _deliver(self, key: _Key, batch: list[Any]) -> tuple[str, set[int]]:
        """Encode and POST one batch; never raises. Returns the outcome and the invalid items' indices."""
        model, kind = key
        columnar = kind == "rows" and self._is_columnar(batch)
        try:
            body = _encode({"columns": _columns(batch)} if columnar else {kind: batch})
        except (TypeError, ValueError) as exc:
            self._log_once(key, "encode", f"{len(batch)} {kind} not encodable as JSON, rejected: {exc}")
            return "rejected", set()
        headers = {**_HEADERS, "Idempotency-Key": uuid.uuid4().hex}
        if self._gzip_bytes and len(body) >= self._gzip_bytes:
            body = gzip.compress(body, compresslevel=1, mtime=0)
            headers["Content-Encoding"] = "gzip"
        try:
            url = f"{self._base_url}/v1/models/{quote(model, safe='')}/{kind}"
            return self._post(key, url, body, headers, columnar)
        except Exception:  # a bug here must not kill the thread or lose the count
            log.exception("drift monitor client: unexpected error sending %s for %s", kind, model)
            return "dropped", set()

    def _is_columnar(self, batch: list[Any]) -> bool:
        """Rows that all have the same columns, enough of them to be worth it."""
        if len(batch) < self._columnar_rows or not all(isinstance(row, Mapping) for row in batch):
            return False
        first = batch[0].keys()
        return all(row.keys() == first for row in batch)

    def _post(
        self, key: _Key, url: str, body: bytes, headers: dict[str, str], columnar: bool
    ) -> tuple[str, set[int]]:
        """POST with retries: "sent", "rejected" (with the items a 422 names as invalid) or "dropped"."""
        delay, max_delay = self._backoff
        problem = ""
        wait: float | None = None  # what the server asked for (Retry-After), if it did
        for attempt in range(self._max_attempts):
            if attempt:
                pause = wait if wait is not None else random.uniform(delay / 2, delay)
                if self._stop.wait(pause):  # close() cuts the wait short
                    return "dropped", set()
                delay = min(2 * delay, max_delay)
                with self._lock:
                    self._retried += 1
            wait = None
            try:
                response = self._session.post(
                    url, data=body, headers=headers, timeout=self._timeouts, allow_redirects=False
                )
            except _RETRYABLE as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            except requests.RequestException as exc:  # retrying cannot help
                problem = f"{type(exc).__name__}: {exc}"
                break
            status = response.status_code
            if 200 <= status < 300:
                return "sent", set()
            if status == 429 or status >= 500:
                problem = f"HTTP {status}: {response.text[:500]}"
                wait = _retry_after(response, self._max_retry_after)
                continue
            self._log_once(key, status, f"HTTP {status} from {url}, not retried: {response.text[:1000]}")
            return "rejected", _invalid_items(response, key[1], columnar) if status == 422 else set()
        self._log_once(key, "dropped", f"batch to {url} dropped after {attempt + 1} attempts: {problem}")
        return "dropped", set()

    def _log_once(self, key: _Key, what: int | str, message: str) -> None:
        first = (*key, what) not in self._logged
        self._logged.add((*key, what))
        log.log(logging.WARNING if first else logging.DEBUG, "drift monitor client: %s", message)


def _invalid_items(response: requests.Response, kind: Kind, columnar: bool = False) -> set[int]:
    """Indices of the items a 422 names: `["body", kind, index, ...]`, or for a columnar body
    `["body", "columns", column, index]` (an error about a whole column names no item)."""
    try:
        detail = response.json()["detail"]
        if columnar:
            return {
                int(e["loc"][3]) for e in detail if e["loc"][:2] == ["body", "columns"] and len(e["loc"]) > 3
            }
        return {int(e["loc"][2]) for e in detail if e["loc"][:2] == ["body", kind] and len(e["loc"]) > 2}
    except (ValueError, LookupError, TypeError):  # not that shape: nothing to single out
        return set()


def _retry_after(response: requests.Response, longest: float) -> float | None:
    """Seconds from a `Retry-After: <seconds>` header, at most `longest`; None without one."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), longest) if math.isfinite(seconds) else None


def _columns(batch: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in batch] for name in batch[0]}


def _encode(payload: Any) -> bytes:
    try:
        text = json.dumps(payload, allow_nan=False, default=_jsonable, separators=(",", ":"))
    except ValueError:  # NaN or infinity somewhere: JSON has no such numbers, send null instead
        text = json.dumps(_finite(payload), allow_nan=False, default=_jsonable, separators=(",", ":"))
    return text.encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, pandas objects
    return tolist() if callable(tolist) else str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if value is None or isinstance(value, str | int):
        return value
    return _finite(_jsonable(value))
