"""A bounded sliding window of rows, stored column by column in ring buffers. No I/O.

Appending a batch costs O(batch): its column arrays are copied into the ring slots after the newest
row, overwriting the oldest rows once the window is full. Rows older than `max_age` are dropped
with a binary search on an eviction key that never decreases in ring order: the arrival time
(`age_by="arrival"`, the default), or the running maximum of the event times
(`age_by="event_time"`). By event time, a row that arrives already older than `max_age` is not
kept, and a row that arrived out of order and aged out before the rows ahead of it is left out of
every copy taken with `now` until it reaches the front. `copy(now)` copies the rows in effect under
the lock (in event-time order when the window ages by event time), so a calculation sees one
consistent window; `copy()` copies everything as stored, in arrival order.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from monitor_service.schema import Batch, ColumnKind
from monitor_service.timestamps import EventLag

AgeBy = Literal["arrival", "event_time"]


@dataclass(frozen=True)
class WindowRows:
    """Rows (in arrival order, or event-time order; see `SlidingWindow.copy`), one array per column,
    plus each row's arrival time."""

    columns: dict[str, np.ndarray]
    arrival: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.arrival)


class SlidingWindow:
    """Columnar ring buffer bounded by row count and, optionally, by age in seconds."""

    def __init__(
        self,
        kinds: Mapping[str, ColumnKind],
        max_rows: int,
        max_age: float | None = None,
        *,
        id_column: str | None = None,
        target_column: str | None = None,
        age_by: AgeBy = "arrival",
    ) -> None:
        self.max_rows = max_rows
        self.max_age = max_age
        self._kinds = dict(kinds)
        # The event time column, if any: its lag is observed, and it can be what max_age measures.
        self._event = next((name for name, kind in self._kinds.items() if kind is ColumnKind.TIMESTAMP), None)
        if age_by == "event_time" and self._event is None:
            raise ValueError("a window aged by event time needs a timestamp column")
        self.age_by = age_by
        # The column max_age measures, when it is the event time (None: arrival).
        self._by_event = self._event if age_by == "event_time" else None
        self.event_lag = EventLag() if self._event is not None else None
        self._id_column = id_column
        self._target_column = target_column
        # Row id -> sequence number of its newest row; a sequence number maps to slot seq % max_rows.
        self._index: dict[str, int] = {}
        self._first_seq = 0
        # Float columns: np.empty pages become resident only as rows arrive. Object columns hold
        # a pointer per slot (8 bytes x max_rows) from the start.
        self._data = {
            name: np.empty(max_rows, dtype=np.float64 if _is_float(kind) else object)
            for name, kind in self._kinds.items()
        }
        self._arrival = np.empty(max_rows, dtype=np.float64)
        # Eviction key per slot, non-decreasing in ring order: arrival, or the running max event time.
        self._key = self._arrival if age_by == "arrival" else np.empty(max_rows, dtype=np.float64)
        self._max_event = -np.inf
        self._start = 0
        self._size = 0
        self._lock = threading.Lock()
        self.last_arrival: float | None = None

    def __len__(self) -> int:
        return self._size

    def append(self, batch: Batch, now: float) -> int:
        """Add the batch's rows (the newest `max_rows` if it is larger); return the window size."""
        columns, n = batch.columns, batch.rows
        with self._lock:
            # Arrival times must not decrease in ring order (eviction bisects them).
            now = max(now, self.last_arrival or now)
            self._evict_older_than(now)
            if self.event_lag is not None and self._event is not None and n:
                self.event_lag.observe(now - columns[self._event])
            if self._by_event is not None and self.max_age is not None and n:
                live = columns[self._by_event] >= now - self.max_age
                if not live.all():  # rows already older than max_age are not kept
                    kept = np.flatnonzero(live)
                    columns, n = {name: values[kept] for name, values in columns.items()}, kept.size
            skip = max(0, n - self.max_rows)
            count = n - skip
            overflow = max(0, self._size + count - self.max_rows)
            if overflow:
                self._drop_oldest(overflow, release=False)  # the new rows overwrite these slots
            tail = (self._start + self._size) % self.max_rows
            first = min(count, self.max_rows - tail)
            for name, target in self._data.items():
                source = columns[name]
                target[tail : tail + first] = source[skip : skip + first]
                target[: count - first] = source[skip + first :]
            self._arrival[tail : tail + first] = now
            self._arrival[: count - first] = now
            if self._by_event is not None and count:
                keys = self._running_max(columns[self._by_event][skip:])
                self._key[tail : tail + first] = keys[:first]
                self._key[: count - first] = keys[first:]
            if self._id_column is not None:
                seq = self._first_seq + self._size
                for offset, row_id in enumerate(columns[self._id_column][skip:]):
                    if row_id is not None:
                        self._index[row_id] = seq + offset
            self._size += count
            if count:
                self.last_arrival = now
            return self._size

    def _running_max(self, events: np.ndarray) -> np.ndarray:
        keys = np.maximum.accumulate(np.maximum(events, self._max_event))
        self._max_event = float(keys[-1])
        return keys

    def evict_expired(self, now: float) -> int:
        """Drop rows older than `max_age`; return the window size."""
        with self._lock:
            self._evict_older_than(now)
            return self._size

    def copy(self, now: float | None = None) -> WindowRows:
        """A copy of the rows, taken atomically.

        With `now`: the rows in effect at `now` (what calculations and the export use), in
        event-time order when the window ages by event time. Without: every row held, in arrival
        order (what a checkpoint stores).
        """
        with self._lock:
            if now is not None:
                self._evict_older_than(now)
            rows = WindowRows(
                {name: self._ordered(array) for name, array in self._data.items()},
                self._ordered(self._arrival),
            )
        if now is None or self._by_event is None:
            return rows
        cutoff = None if self.max_age is None else now - self.max_age
        return _by_event_time(rows, self._by_event, cutoff)

    def restore(self, saved: WindowRows) -> None:
        """Replace the contents with saved rows (the newest `max_rows`), keeping arrival times."""
        with self._lock:
            count = min(saved.rows, self.max_rows)
            for name, array in self._data.items():
                source = saved.columns.get(name)
                if source is None:  # a column added to the config since it was saved
                    array[:count] = np.nan if _is_float(self._kinds[name]) else None
                else:
                    array[:count] = source[saved.rows - count :]
            self._arrival[:count] = saved.arrival[saved.rows - count :]
            if self._by_event is not None and count:
                events = self._data[self._by_event][:count]
                self._max_event = -np.inf
                self._key[:count] = self._running_max(
                    np.where(np.isnan(events), self._arrival[:count], events)
                )
            self._start, self._size, self._first_seq = 0, count, 0
            self.last_arrival = float(self._arrival[count - 1]) if count else None
            self._index.clear()
            if self._id_column is not None:
                for seq, row_id in enumerate(self._data[self._id_column][:count]):
                    if row_id is not None:
                        self._index[row_id] = seq

    def _ordered(self, array: np.ndarray) -> np.ndarray:
        end = self._start + self._size
        if end <= self.max_rows:
            return array[self._start : end].copy()
        return np.concatenate((array[self._start :], array[: end - self.max_rows]))

    def apply_labels(self, ids: Sequence[str], targets: Sequence[Any]) -> list[bool]:
        """Write each label into the target of the newest row with its id; True where one was found."""
        if self._id_column is None or self._target_column is None:
            return [False] * len(ids)
        found = []
        with self._lock:
            column = self._data[self._target_column]
            for row_id, target in zip(ids, targets, strict=True):
                seq = self._index.get(row_id)
                if seq is not None:
                    column[seq % self.max_rows] = target
                found.append(seq is not None)
        return found

    def _drop_oldest(self, count: int, *, release: bool = True) -> None:
        if self._id_column is not None:
            ids = self._data[self._id_column]
            for seq in range(self._first_seq, self._first_seq + count):
                row_id = ids[seq % self.max_rows]
                if row_id is not None and self._index.get(row_id) == seq:
                    del self._index[row_id]
        self._first_seq += count
        for name, array in self._data.items():
            if release and not _is_float(self._kinds[name]):
                _clear(array, self._start, count)
        self._start = (self._start + count) % self.max_rows
        self._size -= count

    def _evict_older_than(self, now: float) -> None:
        if self.max_age is None or not self._size:
            return
        cutoff = now - self.max_age
        end = self._start + self._size
        first = self._key[self._start : min(end, self.max_rows)]
        expired = int(np.searchsorted(first, cutoff, side="left"))
        if expired == len(first) and end > self.max_rows:
            expired += int(np.searchsorted(self._key[: end - self.max_rows], cutoff, side="left"))
        if expired:
            self._drop_oldest(expired)


def _by_event_time(copied: WindowRows, event: str, cutoff: float | None) -> WindowRows:
    """The rows not older than `cutoff` by event time, sorted by event time (stable)."""
    events = copied.columns[event]
    rows = np.arange(copied.rows)
    if cutoff is not None and (events < cutoff).any():
        rows = np.flatnonzero(events >= cutoff)
    kept = events[rows]
    if kept.size > 1 and (kept[1:] < kept[:-1]).any():
        rows = rows[np.argsort(kept, kind="stable")]
    elif rows.size == copied.rows:
        return copied
    return WindowRows({name: values[rows] for name, values in copied.columns.items()}, copied.arrival[rows])


def _is_float(kind: ColumnKind) -> bool:
    return kind in (ColumnKind.NUMERICAL, ColumnKind.TIMESTAMP)


def _clear(array: np.ndarray, start: int, count: int) -> None:
    """Release references held by evicted object slots so their strings can be freed."""
    end = start + count
    array[start : min(end, len(array))] = None
    if end > len(array):
        array[: end - len(array)] = None
