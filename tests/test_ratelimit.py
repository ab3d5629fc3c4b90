from __future__ import annotations

import time

from monitor_service.ratelimit import RowRateLimiter


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
