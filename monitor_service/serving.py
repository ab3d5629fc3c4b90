"""A uvicorn server that treats SIGTERM/SIGINT as a graceful stop and exits 0."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """SIGTERM/SIGINT shut down gracefully; uvicorn itself would re-raise the signal at exit,
    which ends the process with 143 instead of 0 and looks like a crash to supervisors."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
