"""Bounded requests before the app sees them: uvicorn's httptools protocol with limits and timeouts.

uvicorn (0.54, httptools) accepts request heads of any size (httptools buffers a header by
concatenation, so a growing header costs time quadratic in its size), has no timeout for reading
a head or a body, and no cap on open connections. `GuardedHttpToolsProtocol` adds, per connection:

- a cap on the bytes of a request head (request line and headers) and on the number of headers:
  431 and the connection closed;
- a header timeout, from the connection's first moment (or the next request's first byte) to the
  end of its head, and a body timeout, from the end of the head to the end of the body: 408 and
  the connection closed (the body clock pauses while the app itself is not reading);
- a cap on open connections: at the cap, a new connection takes the place of the one that has spent
  longest (over a second) on an unfinished head, which is closed without an answer; when there is
  none, the new one gets 503 with `Retry-After` and is closed;
- the keep-alive timeout (uvicorn's own) set from the config.

Refusals are logged at most once per 10 s per kind, with a count. `protocol_class(limits)` gives
the class to pass as `uvicorn.Config(http=...)`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from monitor_service.log_throttle import ThrottledLog

log = logging.getLogger(__name__)
_refusals = ThrottledLog(log, interval=10.0)
# File descriptors kept free for everything but client connections (logs, the worker's pipes,
# the listening socket, reference files).
_RESERVED_FDS = 64
# At the connection cap, a connection whose head has been arriving for this long may be closed to
# make room: a real client sends a head in microseconds.
_EVICTABLE_AFTER = 1.0

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    max_connections: int


def effective_max_connections(configured: int) -> int:
    """The connection cap, lowered to what the process's open-file limit allows (with a warning)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or configured + _RESERVED_FDS <= soft:
        return configured
    allowed = max(1, soft - _RESERVED_FDS)
    log.warning(
        "server.max_connections %d is above what the open-file limit %d allows; using %d",
        configured,
        soft,
        allowed,
    )
    return allowed


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that broke a limit (httptools turns
    it into an HttpParserCallbackError from feed_data)."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with head size and count limits, head and body timeouts, a connection cap."""

    limits: Limits  # set on the subclass made by protocol_class()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # waiting for (the rest of) a request head
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # loop time the pending head started (or the connection)

    # -- connections

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()
        if len(self.connections) > self.limits.max_connections and not self._evict_slowest():
            _refusals.log(
                logging.WARNING,
                "connections",
                f"refused connections over server.max_connections ({self.limits.max_connections})",
            )
            self._refuse(503, "too many connections, retry later", retry_after=1)

    def _evict_slowest(self) -> bool:
        """Close the connection that has spent longest (over a second) on an unfinished head."""
        oldest: GuardedHttpToolsProtocol | None = None
        cutoff = self.loop.time() - _EVICTABLE_AFTER
        for other in self.connections:
            if other is self or not isinstance(other, GuardedHttpToolsProtocol):
                continue
            since = other._head_since
            if since is not None and since < cutoff and (oldest is None or since < (oldest._head_since or 0)):
                oldest = other
        if oldest is None:
            return False
        _refusals.log(
            logging.WARNING, "evicted", "closed slow connections to make room at server.max_connections"
        )
        oldest._cancel_timers()
        oldest.connections.discard(oldest)
        oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    # -- bytes in

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._arm_head_timer()
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse_current()
            else:
                _refusals.log(logging.WARNING, "invalid", "answered 400 to invalid HTTP requests")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, f"request head larger than {self.limits.max_header_bytes} bytes")
            self._refuse_current()

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (431, f"more than {self.limits.max_headers} request headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        if self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_body_timer()
        self._in_head = True
        self._head_bytes = 0

    # -- timers

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_since = self.loop.time()
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        self._head_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._head_since = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            # Nothing of a request arrived: an idle connection, closed without an answer.
            self.transport.close()
            return
        self._refusal = (408, f"request head not complete within {self.limits.header_timeout:g} s")
        self._refuse_current()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self._in_head or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app is not reading: not the client's fault
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)
            return
        self._refusal = (408, f"request body not complete within {self.limits.body_timeout:g} s")
        self._refuse_current()

    # -- refusing

    def _refuse_current(self) -> None:
        assert self._refusal is not None
        status, message = self._refusal
        kind = {408: "timeout", 431: "head too large"}.get(status, str(status))
        _refusals.log(logging.WARNING, kind, f"answered {status} ({message}) and closed the connection")
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # the app is answering this request: cut it off
                self.transport.close()
                return
            # The app has not answered yet: it sees the client as gone, and cannot write after us.
            cycle.disconnected = True
            cycle.message_event.set()
        self._refuse(status, message)

    def _refuse(self, status: int, message: str, retry_after: int | None = None) -> None:
        self._cancel_timers()
        body = message.encode()
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if retry_after is not None:
            head.append(b"retry-after: %d\r\n" % retry_after)
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


def protocol_class(limits: Limits) -> type[GuardedHttpToolsProtocol]:
    """A GuardedHttpToolsProtocol subclass bound to `limits`, for `uvicorn.Config(http=...)`."""
    return type("BoundGuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
