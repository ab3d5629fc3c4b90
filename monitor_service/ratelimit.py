"""Per-model ingest rate limit: a token bucket counted in rows."""

from __future__ import annotations

import time


class RowRateLimiter:
    """Allows `rate` rows per second on average, and bursts of up to `burst` rows."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = time.monotonic()

    def try_take(self, rows: int, now: float | None = None) -> float:
        """Take `rows` tokens and return 0, or take nothing and return the seconds to wait."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if rows <= self._tokens:
            self._tokens -= rows
            return 0.0
        return (rows - self._tokens) / self.rate

    def charge(self, rows: float, now: float | None = None) -> None:
        """Take `rows` tokens unconditionally (work done for a rejected request); the bucket may go
        into debt down to -burst, and `debt_wait` refuses requests until it is paid off."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens = max(-self.burst, self._tokens - rows)

    def debt_wait(self, now: float | None = None) -> float:
        """Seconds until the bucket is out of debt (0 when it is not in debt)."""
        now = time.monotonic() if now is None else now
        tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        return 0.0 if tokens >= 0 else -tokens / self.rate
