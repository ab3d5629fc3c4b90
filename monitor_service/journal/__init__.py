"""Where acknowledged rows and labels live, behind one seam.

A `Journal` takes each accepted request body durably before the 202 (`append`), gives back what
it holds at start (`recover`: a checkpoint and the records after it, replayed through the same code
as live traffic), keeps itself healthy (`maintain`), and keeps a replaced reference. `LocalJournal`
(local.py) is a log on this machine's disk; `MemoryJournal` keeps nothing (no `storage.data_dir`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import pandas as pd

from monitor_service.journal.checkpoint import Checkpoint
from monitor_service.journal.records import Record, RecordKind, ReplayReport

__all__ = ["Checkpoint", "Journal", "MemoryJournal", "Record", "RecordKind", "ReplayReport"]


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
