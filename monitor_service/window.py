"""A bounded sliding window of rows, stored column by column in ring buffers. No I/O.

Appending a batch costs O(batch): its column arrays are copied into the ring slots after the newest
row, overwriting the oldest rows once the window is full. Rows older than `max_age` (by arrival
time, which only grows in ring order) are dropped with a binary search. `copy()` copies the
rows in arrival order under the lock, so the calculation sees one consistent window.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor_service.schema import Batch, ColumnKind


@dataclass(frozen=True)
class WindowRows:
    """Rows in arrival order, one array per column, plus each row's arrival time."""

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
    ) -> None:
        self.max_rows = max_rows
        self.max_age = max_age
        self._kinds = dict(kinds)
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
        self._start = 0
        self._size = 0
        self._lock = threading.Lock()
        self.last_arrival: float | None = None

    def __len__(self) -> int:
        return self._size

    def append(self, batch: Batch, now: float) -> int:
        """Add the batch's rows (the newest `max_rows` if it is larger); return the window size."""
        n = batch.rows
        skip = max(0, n - self.max_rows)
        with self._lock:
            # Arrival times must not decrease in ring order (eviction bisects them).
            now = max(now, self.last_arrival or now)
            self._evict_older_than(now)
            count = n - skip
            overflow = max(0, self._size + count - self.max_rows)
            if overflow:
                self._drop_oldest(overflow, release=False)  # the new rows overwrite these slots
            tail = (self._start + self._size) % self.max_rows
            first = min(count, self.max_rows - tail)
            for name, target in self._data.items():
                source = batch.columns[name]
                target[tail : tail + first] = source[skip : skip + first]
                target[: count - first] = source[skip + first :]
            self._arrival[tail : tail + first] = now
            self._arrival[: count - first] = now
            if self._id_column is not None:
                seq = self._first_seq + self._size
                for offset, row_id in enumerate(batch.columns[self._id_column][skip:]):
                    if row_id is not None:
                        self._index[row_id] = seq + offset
            self._size += count
            if count:
                self.last_arrival = now
            return self._size

    def evict_expired(self, now: float) -> int:
        """Drop rows older than `max_age`; return the window size."""
        with self._lock:
            self._evict_older_than(now)
            return self._size

    def copy(self, now: float | None = None) -> WindowRows:
        """A copy of the current rows in arrival order, taken atomically (rows older than `max_age`
        at `now` are dropped first)."""
        with self._lock:
            if now is not None:
                self._evict_older_than(now)
            return WindowRows(
                {name: self._ordered(array) for name, array in self._data.items()},
                self._ordered(self._arrival),
            )

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
        first = self._arrival[self._start : min(end, self.max_rows)]
        expired = int(np.searchsorted(first, cutoff, side="left"))
        if expired == len(first) and end > self.max_rows:
            expired += int(np.searchsorted(self._arrival[: end - self.max_rows], cutoff, side="left"))
        if expired:
            self._drop_oldest(expired)


def _is_float(kind: ColumnKind) -> bool:
    return kind in (ColumnKind.NUMERICAL, ColumnKind.TIMESTAMP)


def _clear(array: np.ndarray, start: int, count: int) -> None:
    """Release references held by evicted object slots so their strings can be freed."""
    end = start + count
    array[start : min(end, len(array))] = None
    if end > len(array):
        array[: end - len(array)] = None
