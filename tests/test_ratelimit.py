from __future__ import annotations

import time

from monitor_service.ratelimit import RowRateLimiter


def test_rate_limiter_allows_the_burst_then_the_rate() -> None:
    limiter = RowRateLimiter(rate=100.0, burst=200.0)
    limiter._updated = 0.0
    limiter._tokens = 200.0
    assert limiter.try_take(200, now=0.0) == 0
    assert limiter.try_take(50, now=0.0) == 0.5  # 50 rows at 100 rows/s
    assert limiter.try_take(50, now=0.5) == 0
    assert limiter.try_take(1, now=0.5) > 0


def test_rate_limiter_refill_never_exceeds_the_burst() -> None:
    limiter = RowRateLimiter(rate=10.0, burst=20.0)
    limiter._updated = 0.0
    assert limiter.try_take(20, now=1_000.0) == 0
    assert limiter.try_take(1, now=1_000.0) > 0


def test_ratelimit_charge_puts_the_bucket_in_debt_until_paid_off() -> None:
    limiter = RowRateLimiter(rate=100, burst=200)
    t = time.monotonic() + 1  # the bucket starts full; later times only add to it
    assert limiter.debt_wait(now=t) == 0.0
    limiter.charge(300, now=t)  # 200 in the bucket: 100 rows of debt
    assert limiter.debt_wait(now=t) == 1.0
    assert limiter.try_take(1, now=t + 0.5) > 0
    assert limiter.debt_wait(now=t + 1.0) == 0.0


def test_ratelimit_charge_debt_is_bounded_by_the_burst() -> None:
    limiter = RowRateLimiter(rate=10, burst=50)
    t = time.monotonic() + 1
    limiter.charge(1_000_000, now=t)
    assert limiter.debt_wait(now=t) == 5.0
