"""A uvicorn server that treats SIGTERM/SIGINT as a graceful stop and exits 0, and its listening socket."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """SIGTERM/SIGINT shut down gracefully; uvicorn itself would re-raise the signal at exit,
    which ends the process with 143 instead of 0 and looks like a crash to supervisors.

    `ready_message`, when given, is logged once the server accepts connections (after the app's
    start-up), so "ready" in the log means ready.

    `freeze_gc`: once started, move every object that exists then (the imported libraries, the
    references, the recovered windows' bookkeeping: millions of objects) out of the garbage
    collector's reach (`gc.freeze`). A full collection otherwise walks them all, about 50 ms on
    the event loop several times per 10 s of ingestion.
    """

    def __init__(
        self, config: uvicorn.Config, ready_message: str | None = None, *, freeze_gc: bool = False
    ) -> None:
        super().__init__(config)
        self.ready_message = ready_message
        self.freeze_gc = freeze_gc

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.freeze_gc:
            gc.collect()
            gc.freeze()
        if self.started and self.ready_message:
            log.info("%s", self.ready_message)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (IPv4 or IPv6, as the host resolves), not yet listening.

    Binding before the app starts means a taken port fails at once, with the address in the error,
    instead of after the references are loaded. Raises OSError.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def describe(sock: socket.socket) -> str:
    """http://host:port of a bound socket (the real port when 0 was asked for)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
