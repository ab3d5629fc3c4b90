"""A model's window as stored records, cut the way a local window cuts its rows. No I/O.

The stream keeps more than the window (its limits count messages, not rows); `WindowCache.cut`
keeps exactly what replaying into a local window needs: the fewest newest row messages holding at
least `max_rows` rows, none older than `max_age` by arrival, and the label messages that can still
join them.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RecordKind = Literal["rows", "labels"]
KINDS: tuple[RecordKind, ...] = ("rows", "labels")
# Labels are kept at least this much longer than the look-back: a row validated at t may reach the
# stream (and a read) up to a publish timeout later, and arrival times come from several clocks.
LABEL_MARGIN = 60.0


@dataclass(frozen=True)
class StreamRecord:
    """One stored request: shaped like journal.Record (kind, arrived, body_format, body), plus its
    place. `body_format` is bodies.py's format byte (0 JSON, 1 NDJSON, 2 Arrow, +16 gzip)."""

    seq: int
    kind: RecordKind
    arrived: float
    rows: int
    body_format: int
    body: bytes
    msg_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class WindowCache:
    """What the last read of one model kept, in stream order, and where it stopped."""

    rows: deque[StreamRecord] = field(default_factory=deque)
    labels: deque[StreamRecord] = field(default_factory=deque)
    row_count: int = 0
    last_seq: int = 0
    stream_created: Any = None
    # True once the cache holds everything the stream held from the window's start: only then may
    # `trim` purge what lies before it
    complete: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def reset(self) -> None:
        self.rows.clear()
        self.labels.clear()
        self.row_count = 0
        self.last_seq = 0
        self.complete = False

    def add(self, record: StreamRecord) -> None:
        if record.kind == "rows":
            self.rows.append(record)
            self.row_count += record.rows
        else:
            self.labels.append(record)
        self.last_seq = max(self.last_seq, record.seq)

    def cut(
        self,
        max_rows: int,
        max_age: float | None,
        now: float,
        labels_lookback: float,
        margin: float = LABEL_MARGIN,
    ) -> None:
        """Keep the newest row messages holding >= max_rows rows, none older than max_age, and the
        labels that can still join them: after the first kept row, or within the look-back (plus
        `margin`) before it, or before `now` when no row is kept."""
        cutoff = None if max_age is None else now - max_age
        rows = self.rows
        while rows and (
            self.row_count - rows[0].rows >= max_rows or (cutoff is not None and rows[0].arrived < cutoff)
        ):
            self.row_count -= rows.popleft().rows
        first_seq = rows[0].seq if rows else self.last_seq + 1
        oldest = min(rows[0].arrived, now) if rows else now
        label_cutoff = oldest - labels_lookback - margin
        labels = self.labels
        while labels and labels[0].seq < first_seq and labels[0].arrived < label_cutoff:
            labels.popleft()

    def records(self) -> list[StreamRecord]:
        return list(heapq.merge(self.rows, self.labels, key=lambda record: record.seq))
