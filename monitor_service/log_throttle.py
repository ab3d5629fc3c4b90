"""Log lines that repeat at most once per interval, with a count of those held back."""

from __future__ import annotations

import logging
import time


class ThrottledLog:
    """Say a recurring problem once, then at most once per `interval` seconds with how many times
    it recurred, so a broken disk or a stream of disconnecting clients cannot flood the log."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log under `key` unless it was logged less than `interval` ago; True when it was logged."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        held = self._held.pop(key, 0)
        suffix = f" (and {held} more time(s) since the last report)" if held else ""
        self.logger.log(level, message + suffix, *args, exc_info=exc_info)
        self._last[key] = now
        return True

    def resolved(self, key: str, message: str, *args: object) -> None:
        """The problem under `key` is over: say so once if it was reported."""
        if self._last.pop(key, None) is not None:
            self._held.pop(key, None)
            self.logger.info(message, *args)
