"""Where acknowledged rows and labels live, behind one seam.

A `Journal` takes each accepted request body durably before the 202 (`append`), gives back what
it holds at start (`recover`: a checkpoint and the records after it, replayed through the same code
as live traffic), keeps itself healthy (`maintain`), and keeps a replaced reference. `LocalJournal`
(local.py) is a log on this machine's disk; `MemoryJournal` keeps nothing (no `storage.data_dir`).

A `SharedJournal` is one log many monitors write and read (cluster mode: `JetStreamJournal`,
jetstream_journal.py): a model's window is then fed only from it (`read_since`), never by ingest,
so every monitor replays the same records in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from monitor_service.journal.checkpoint import Checkpoint
from monitor_service.journal.records import Record, RecordKind, ReplayReport

__all__ = [
    "Checkpoint",
    "Journal",
    "LogRead",
    "MemoryJournal",
    "Record",
    "RecordKind",
    "ReplayReport",
    "SharedJournal",
]


class Journal(Protocol):
    """Durable storage of one model's acknowledged request bodies."""

    report: ReplayReport

    def recover(self) -> tuple[Checkpoint | None, Iterator[Record]]:
        """What was saved, and the records to replay after it, in order."""
        ...

    def open_new_segment(self) -> int:
        """Start writing (after recovery)."""
        ...

    async def append(self, record: Record, batch_id: str | None = None) -> None:
        """Store one record durably, or raise StorageUnavailable (nothing stored)."""
        ...

    async def maintain(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Periodic care (fsync, healing, compaction); never raises."""
        ...

    async def compact(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Save a checkpoint now and drop what it covers."""
        ...

    @property
    def durable(self) -> bool:
        """False when nothing survives a restart."""
        ...

    @property
    def size(self) -> int:
        """Bytes written since the last checkpoint (for the log-size gauge)."""
        ...

    @property
    def needs_final_checkpoint(self) -> bool: ...

    def save_reference(self, frame: pd.DataFrame) -> None: ...

    def saved_reference(self) -> pd.DataFrame | None: ...

    def close(self) -> None: ...


class MemoryJournal:
    """No durability: windows live in memory only (no `storage.data_dir`)."""

    durable = False
    size = 0
    needs_final_checkpoint = False

    def __init__(self) -> None:
        self.report = ReplayReport()

    def recover(self) -> tuple[Checkpoint | None, Iterator[Record]]:
        return None, iter(())

    def open_new_segment(self) -> int:
        return 0

    async def append(self, record: Record, batch_id: str | None = None) -> None:
        """Nothing to store."""

    async def maintain(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Nothing to maintain."""

    async def compact(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Nothing to compact."""

    def save_reference(self, frame: pd.DataFrame) -> None:
        """Not persisted: the reference lasts until the next start."""

    def saved_reference(self) -> pd.DataFrame | None:
        return None

    def close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class LogRead:
    """Records of a shared log after a position, each with its own position, in log order.

    `reset`: the reader cannot go on from the position it gave (its first read, or records it never
    saw are gone), so these records rebuild the window from scratch. `position` is where the next
    read goes on from.
    """

    records: list[tuple[int, Record]]
    reset: bool
    position: int


@runtime_checkable
class SharedJournal(Journal, Protocol):
    """A log shared by many monitors (cluster mode). `append` stores a batch once per batch id."""

    async def read_since(
        self, position: int, *, now: float, max_rows: int, max_age: float | None, labels_lookback: float
    ) -> LogRead:
        """The records after `position`, or a reset (see LogRead): then the records a window of
        `max_rows` rows and `max_age` seconds needs, with the labels that arrived up to
        `labels_lookback` seconds before its first row. StorageUnavailable when the log does not
        answer."""
        ...

    async def trim(self) -> None:
        """Drop what no window needs any more (after a calculation read the window)."""
        ...

    async def shared_reference(self) -> pd.DataFrame | None:
        """A reference replaced since the last call (by any monitor), or None when unchanged."""
        ...
