from __future__ import annotations

import logging

import pytest

from monitor_service.log_throttle import ThrottledLog


def test_throttled_log_says_a_recurring_problem_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    throttled = ThrottledLog(logging.getLogger("test.throttle"), interval=3600)
    with caplog.at_level(logging.INFO, logger="test.throttle"):
        assert throttled.log(logging.ERROR, "disk", "disk %s", "full")
        for _ in range(50):
            assert not throttled.log(logging.ERROR, "disk", "disk %s", "full")
        throttled.resolved("disk", "disk writable again")
        assert throttled.log(logging.ERROR, "disk", "disk %s", "full")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["disk full", "disk writable again", "disk full"]


def test_throttled_log_reports_how_many_were_held_back(caplog: pytest.LogCaptureFixture) -> None:
    throttled = ThrottledLog(logging.getLogger("test.throttle2"), interval=0.0)
    throttled._last["k"] = 0.0
    throttled._held["k"] = 7
    with caplog.at_level(logging.ERROR, logger="test.throttle2"):
        throttled.log(logging.ERROR, "k", "again")
    assert caplog.records[-1].getMessage() == "again (and 7 more time(s) since the last report)"
