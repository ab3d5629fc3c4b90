from __future__ import annotations

import numpy as np

from monitor_service.schema import Batch, ColumnKind
from monitor_service.window import SlidingWindow

KINDS = {"n": ColumnKind.NUMERICAL, "c": ColumnKind.CATEGORICAL}


def _batch(start: int, count: int) -> Batch:
    values = np.arange(start, start + count, dtype=np.float64)
    labels = np.array([f"c{i}" for i in range(start, start + count)], dtype=object)
    return Batch({"n": values, "c": labels}, count)


def _ids(window: SlidingWindow, now: float | None = None) -> list[int]:
    return [int(v) for v in window.copy(now).columns["n"]]


def test_window_keeps_rows_in_arrival_order_until_full() -> None:
    window = SlidingWindow(KINDS, max_rows=10)
    window.append(_batch(0, 4), now=1.0)
    window.append(_batch(4, 3), now=2.0)
    assert _ids(window) == list(range(7))
    assert window.copy().columns["c"].tolist() == [f"c{i}" for i in range(7)]


def test_window_evicts_oldest_rows_when_full_across_the_ring_edge() -> None:
    window = SlidingWindow(KINDS, max_rows=10)
    for start in range(0, 27, 3):
        size = window.append(_batch(start, 3), now=float(start))
        assert size == min(start + 3, 10)
    assert _ids(window) == list(range(17, 27))
    assert window.copy().columns["c"].tolist() == [f"c{i}" for i in range(17, 27)]


def test_window_keeps_newest_rows_of_a_batch_larger_than_the_window() -> None:
    window = SlidingWindow(KINDS, max_rows=5)
    window.append(_batch(0, 2), now=1.0)
    window.append(_batch(100, 12), now=2.0)
    assert _ids(window) == list(range(107, 112))


def test_window_releases_evicted_category_objects() -> None:
    window = SlidingWindow(KINDS, max_rows=4)
    window.append(_batch(0, 4), now=1.0)
    window.append(_batch(4, 2), now=2.0)
    held = {v for v in window._data["c"] if v is not None}
    assert held == {"c2", "c3", "c4", "c5"}


def test_window_drops_rows_older_than_max_age() -> None:
    window = SlidingWindow(KINDS, max_rows=100, max_age=10.0)
    window.append(_batch(0, 5), now=100.0)
    window.append(_batch(5, 5), now=105.0)
    assert window.evict_expired(now=109.0) == 10
    assert window.evict_expired(now=110.5) == 5
    assert _ids(window, now=110.5) == list(range(5, 10))
    assert window.evict_expired(now=200.0) == 0
    assert _ids(window) == []


def test_window_age_eviction_works_across_the_ring_edge() -> None:
    window = SlidingWindow(KINDS, max_rows=6, max_age=10.0)
    for step in range(5):
        window.append(_batch(step * 2, 2), now=100.0 + step)
    # ring holds rows 4..9 arriving at 102, 103, 104 and wraps around the edge
    assert window.evict_expired(now=113.5) == 2
    assert _ids(window) == [8, 9]


def test_window_snapshot_is_a_copy() -> None:
    window = SlidingWindow(KINDS, max_rows=4)
    window.append(_batch(0, 4), now=1.0)
    snapshot = window.copy()
    window.append(_batch(10, 4), now=2.0)
    assert snapshot.columns["n"].tolist() == [0, 1, 2, 3]
    assert snapshot.rows == 4


def test_window_arrival_time_never_goes_backwards() -> None:
    window = SlidingWindow(KINDS, max_rows=10, max_age=5.0)
    window.append(_batch(0, 2), now=100.0)
    window.append(_batch(2, 2), now=90.0)  # the wall clock stepped back
    assert window.evict_expired(now=104.0) == 4
    assert window.evict_expired(now=106.0) == 0


def _id_window(max_rows: int) -> SlidingWindow:
    kinds = {"id": ColumnKind.ID, "n": ColumnKind.NUMERICAL, "t": ColumnKind.NUMERICAL}
    return SlidingWindow(kinds, max_rows=max_rows, id_column="id", target_column="t")


def _id_batch(ids: list[str]) -> Batch:
    count = len(ids)
    return Batch(
        {"id": np.array(ids, dtype=object), "n": np.zeros(count), "t": np.full(count, np.nan)}, count
    )


def test_window_apply_labels_joins_by_id_to_the_newest_row() -> None:
    window = _id_window(10)
    window.append(_id_batch(["a", "b", "a"]), now=1.0)
    assert window.apply_labels(["a", "b", "zz"], [1.0, 2.0, 3.0]) == [True, True, False]
    targets = window.copy().columns["t"]
    assert np.isnan(targets[0])
    assert targets[1:].tolist() == [2.0, 1.0]


def test_window_forgets_ids_of_evicted_rows() -> None:
    window = _id_window(3)
    window.append(_id_batch(["a", "b", "c"]), now=1.0)
    window.append(_id_batch(["d", "e"]), now=2.0)
    assert window.apply_labels(["a", "b", "c", "e"], [1.0, 1.0, 1.0, 1.0]) == [False, False, True, True]
    assert set(window._index) == {"c", "d", "e"}


EVENT_KINDS = {"ts": ColumnKind.TIMESTAMP, "n": ColumnKind.NUMERICAL}


def _event_batch(stamps: list[float], first: int = 0) -> Batch:
    count = len(stamps)
    return Batch({"ts": np.array(stamps), "n": np.arange(first, first + count, dtype=np.float64)}, count)


def test_window_by_event_time_evicts_rows_whose_event_is_older_than_max_age() -> None:
    window = SlidingWindow(EVENT_KINDS, max_rows=100, max_age=10.0, age_by="event_time")
    window.append(_event_batch([95.0, 99.0, 100.0]), now=100.0)
    window.append(_event_batch([101.0, 104.0], first=3), now=105.0)
    assert window.evict_expired(now=106.0) == 4  # the row of event time 95 has aged out
    assert _ids(window, now=106.0) == [1, 2, 3, 4]
    assert window.evict_expired(now=112.0) == 1


def test_window_by_event_time_does_not_keep_rows_that_arrive_already_expired() -> None:
    window = SlidingWindow(EVENT_KINDS, max_rows=100, max_age=10.0, age_by="event_time")
    assert window.append(_event_batch([50.0, 99.0, 10.0]), now=100.0) == 1
    assert _ids(window, now=100.0) == [1]


def test_window_by_event_time_hides_expired_rows_that_arrived_out_of_order() -> None:
    window = SlidingWindow(EVENT_KINDS, max_rows=100, max_age=10.0, age_by="event_time")
    window.append(_event_batch([100.0, 92.0, 99.0]), now=100.0)
    copied = window.copy(now=103.0)  # 92 is older than 103 - 10 though 100 arrived before it
    assert copied.columns["n"].tolist() == [2, 0]  # in event-time order
    assert copied.columns["ts"].tolist() == [99.0, 100.0]
    assert copied.arrival.tolist() == [100.0, 100.0]
    assert window.copy().columns["n"].tolist() == [0, 1, 2]  # for persistence: as stored


def test_window_by_event_time_survives_a_restore() -> None:
    window = SlidingWindow(EVENT_KINDS, max_rows=100, max_age=10.0, age_by="event_time")
    window.append(_event_batch([95.0, 100.0]), now=100.0)
    restored = SlidingWindow(EVENT_KINDS, max_rows=100, max_age=10.0, age_by="event_time")
    restored.restore(window.copy())
    assert restored.evict_expired(now=106.0) == 1


def test_window_arrival_age_ignores_event_times() -> None:
    window = SlidingWindow(EVENT_KINDS, max_rows=100, max_age=10.0)
    window.append(_event_batch([1.0, 2.0]), now=100.0)
    assert window.evict_expired(now=105.0) == 2
