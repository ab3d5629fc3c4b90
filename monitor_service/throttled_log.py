"""Log lines that a client can trigger at will, at most one per interval per kind, with a count."""

from __future__ import annotations

import logging
import time


class ThrottledLog:
    """`event(kind, message)` logs the first occurrence of a kind at once, then at most one line per
    `interval` seconds saying how many happened meanwhile; never a traceback."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, level: int = logging.WARNING) -> None:
        self.logger = logger
        self.interval = interval
        self.level = level
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def event(self, kind: str, message: str, now: float | None = None) -> bool:
        """Count one event; True when a line was written for it."""
        now = time.monotonic() if now is None else now
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        more = self._suppressed.pop(kind, 0)
        suffix = f" ({more} more in the last {now - last:.0f} s)" if more and last is not None else ""
        self.logger.log(self.level, "%s%s", message, suffix)
        return True
