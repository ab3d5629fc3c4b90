"""Event times (`columns.timestamp`): reading them, their plausible range, and the event-time lag.

An event time is Unix seconds or an ISO 8601 string; one without a zone is UTC (or refused, with
`timestamps.without_zone: reject`), never the server's local time. A row without one gets its
arrival time. Times before `timestamps.earliest` or later than arrival + `timestamps.max_ahead`
are refused, with the bound in the message. The lag (arrival minus event time) of every row is
observed into a histogram, so late or replayed traffic shows in `/metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from monitor_service.values import Problem

# Upper bounds of the lag histogram's buckets, in seconds: 1 s to 30 days.
LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 604_800.0, 2_592_000.0)
_EXAMPLE = "2025-06-01T12:00:00Z"
_SECONDS_TYPES = frozenset({float, int, type(None)})


@dataclass(frozen=True)
class TimestampPolicy:
    without_zone: Literal["utc", "reject"] = "utc"
    earliest: float = 946_684_800.0  # 2000-01-01T00:00:00Z
    max_ahead: float = 86_400.0


def iso(seconds: float) -> str:
    """`2000-01-01T00:00:00Z`; whole seconds unless there is a fraction."""
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return repr(seconds)
    text = moment.isoformat(timespec="seconds" if moment.microsecond == 0 else "microseconds")
    return text.replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def event_times(values: list[Any], policy: TimestampPolicy, now: float) -> tuple[np.ndarray, list[Problem]]:
    """One column of event times as float64 Unix seconds (`now` where absent), and its problems."""
    latest = now + policy.max_ahead
    if _SECONDS_TYPES.issuperset(map(type, values)):  # Unix seconds or nulls: vectorised when valid
        try:
            seconds = np.array(values, dtype=np.float64)  # None becomes NaN
        except OverflowError:
            seconds = None
        if seconds is not None:
            absent = np.isnan(seconds)
            if absent.any() and int(np.count_nonzero(absent)) == values.count(None):  # no NaN sent
                seconds[absent] = now
            if bool(((seconds >= policy.earliest) & (seconds <= latest)).all()):
                return seconds, []
    out = np.empty(len(values), dtype=np.float64)
    problems: list[Problem] = []
    for i, value in enumerate(values):
        kind = type(value)
        if value is None:
            out[i] = now
            continue
        if kind is float or kind is int:
            stamp = float(value)
            if not math.isfinite(stamp):
                problems.append(
                    (i, "Input should be a finite number of Unix seconds", "datetime_type", value)
                )
                continue
        elif kind is str:
            parsed = _parse_iso(value, policy)
            if isinstance(parsed, str):
                problems.append((i, parsed, "datetime_parsing", value))
                continue
            stamp = parsed
        else:
            message = f"Input should be Unix seconds or an ISO 8601 datetime such as {_EXAMPLE}"
            problems.append((i, message, "datetime_type", value))
            continue
        if not policy.earliest <= stamp <= latest:
            problems.append((i, _out_of_bounds(stamp, policy, latest), "datetime_range", value))
            continue
        out[i] = stamp
    return out, problems


def _parse_iso(text: str, policy: TimestampPolicy) -> float | str:
    """Unix seconds, or the reason the text is not an acceptable ISO 8601 datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"Input should be an ISO 8601 datetime such as {_EXAMPLE}, or Unix seconds"
    if moment.tzinfo is None:
        if policy.without_zone == "reject":
            return (
                "The datetime has no time zone: add Z or an offset such as +02:00 (timestamps.without_zone)"
            )
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return "The datetime is outside the range a clock can hold"


def _out_of_bounds(stamp: float, policy: TimestampPolicy, latest: float) -> str:
    if stamp < policy.earliest:
        return (
            f"{iso(stamp)} is before the earliest accepted event time {iso(policy.earliest)} "
            "(timestamps.earliest)"
        )
    message = (
        f"{iso(stamp)} is after the latest accepted event time {iso(latest)} "
        f"(arrival + timestamps.max_ahead of {_duration(policy.max_ahead)})"
    )
    if policy.earliest <= stamp / 1000 <= latest:
        message += "; this looks like milliseconds: send Unix seconds"
    return message


class EventLag:
    """A histogram of arrival minus event time, per row, in `LAG_BUCKETS` (a negative lag counts as 0)."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(LAG_BUCKETS) + 1, dtype=np.int64)
        self.sum = 0.0

    def observe(self, lags: np.ndarray) -> None:
        lags = np.maximum(lags, 0.0)
        self.counts += np.bincount(
            np.searchsorted(LAG_BUCKETS, lags, side="left"), minlength=len(self.counts)
        )
        self.sum += float(lags.sum())

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative `(le, count)` pairs in Prometheus' form, ending with `+Inf`."""
        cumulative = np.cumsum(self.counts)
        bounds = [str(b) for b in LAG_BUCKETS] + ["+Inf"]
        return [(le, float(c)) for le, c in zip(bounds, cumulative, strict=True)]
