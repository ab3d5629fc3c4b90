"""WindowCache.cut against its definition, for any batch sizes and arrival times (no NATS needed)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from monitor_service.journal.jetstream_window import LABEL_MARGIN, StreamRecord, WindowCache

T0 = 1_700_000_000.0
IN_FLIGHT = 30.0  # a record read later may have arrived (been validated) up to this much before a read


@st.composite
def reads(draw: st.DrawFn) -> tuple[list[StreamRecord], int, float, float]:
    """Rows and labels messages in stream order, read twice: records, split, first and second `now`."""
    count = draw(st.integers(0, 40))
    arrivals, at = [], T0
    for _ in range(count):
        at += draw(st.sampled_from([0.0, 0.5, 3.0, 20.0]))
        arrivals.append(at)
    split = draw(st.integers(0, count))
    first_now = (arrivals[split - 1] if split else T0) + draw(st.floats(0, 300))
    shift = max(0.0, first_now - IN_FLIGHT - arrivals[split]) if split < count else 0.0
    records = []
    for seq, arrived in enumerate(arrivals, start=1):
        kind = draw(st.sampled_from(["rows", "rows", "labels"]))
        later = shift if seq > split else 0.0  # what the first read did not see arrived just before it
        records.append(StreamRecord(seq, kind, arrived + later, draw(st.integers(1, 500)), 0, b""))  # type: ignore[arg-type]
    second_now = max([first_now, *(r.arrived for r in records)]) + draw(st.floats(0, 300))
    return records, split, first_now, second_now


@settings(max_examples=400, deadline=None)
@given(reads(), st.integers(1, 2000), st.one_of(st.none(), st.floats(1, 200)), st.floats(0, 50))
def test_window_cache_cut_keeps_what_a_window_needs(
    scenario: tuple[list[StreamRecord], int, float, float],
    max_rows: int,
    max_age: float | None,
    lookback: float,
) -> None:
    records, split, first_now, now = scenario
    cache = WindowCache()
    for record in records[:split]:
        cache.add(record)
    cache.cut(max_rows, max_age, first_now, lookback)
    for record in records[split:]:
        cache.add(record)
    cache.cut(max_rows, max_age, now, lookback)
    kept = cache.records()
    assert [r.seq for r in kept] == sorted({r.seq for r in kept})

    # rows: the fewest newest messages holding max_rows rows, none arrived before now - max_age
    rows = [r for r in records if r.kind == "rows" and (max_age is None or r.arrived >= now - max_age)]
    expected_rows: list[StreamRecord] = []
    for record in reversed(rows):
        if sum(r.rows for r in expected_rows) >= max_rows:
            break
        expected_rows.insert(0, record)
    assert [r for r in kept if r.kind == "rows"] == expected_rows
    assert cache.row_count == sum(r.rows for r in expected_rows)

    # labels: every one that can still join a kept row (or a later one) is kept
    kept_labels = {r.seq for r in kept if r.kind == "labels"}
    first_row = expected_rows[0].seq if expected_rows else len(records) + 1
    for label in (r for r in records if r.kind == "labels"):
        later = label.seq > first_row
        pending_for_a_kept_row = any(
            label.seq < row.seq and row.arrived - label.arrived <= lookback for row in expected_rows
        )
        pending_for_a_future_row = label.arrived >= now - lookback
        if later or pending_for_a_kept_row or pending_for_a_future_row:
            assert label.seq in kept_labels, label
        oldest = min([now, *(r.arrived for r in expected_rows[:1])])
        if label.seq < first_row and label.arrived < oldest - lookback - LABEL_MARGIN:
            assert label.seq not in kept_labels, label  # and the cache does not grow for ever
