"""The local journal: a durable log and checkpoints under one model's window, on this machine's disk.

Every accepted request body is appended to the model's current log segment before its rows enter
the window and before the 202 goes out (see records.py for the framing). Compaction writes a
checkpoint of the window and the waiting labels (checkpoint.py) and then deletes the segments it
covers; recovery reads the newest checkpoint and replays the newer segments in order. Maintenance
(fsync on the interval policy, healing a broken segment, compaction by size) is decided here, not
by the caller. Files are the monitor's alone: the directory is 0700 and every file 0600.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from monitor_service.errors import SnapshotUnreadable, StorageUnavailable
from monitor_service.files import fsync_directory, replace_atomically
from monitor_service.journal import checkpoint
from monitor_service.journal.checkpoint import Checkpoint, CheckpointUnreadable
from monitor_service.journal.records import Record, ReplayReport, read_segment
from monitor_service.log_throttle import ThrottledLog

log = logging.getLogger(__name__)

REFERENCE = "reference.parquet"


class LocalJournal:
    """The segments, checkpoints and replaced reference of one model, in `directory`.

    Nothing touches the disk before `recover()` (so `check-config` creates no directories).
    """

    durable = True

    def __init__(
        self,
        directory: Path,
        *,
        fsync_every_record: bool,
        compact_bytes: int,
        accept_data_loss: bool = False,
    ) -> None:
        self.directory = directory
        self.fsync_every_record = fsync_every_record
        self.compact_bytes = compact_bytes
        self.accept_data_loss = accept_data_loss
        self.report = ReplayReport()
        self._fd: int | None = None
        self._segment = 0
        self._size = 0
        self._dirty = False
        self._broken: str | None = None
        self._compaction: asyncio.Task[None] | None = None
        self._problems = ThrottledLog(log)

    # -- reading back -------------------------------------------------------------------------

    def recover(self) -> tuple[Checkpoint | None, Iterator[Record]]:
        """The newest checkpoint (or None) and the records written after it; then a fresh segment
        is opened for new records once the caller has consumed the iterator (see `open_new_segment`).

        A checkpoint that cannot be read is moved aside (never overwritten) and SnapshotUnreadable
        is raised, because the segments it covered are gone: start-up stops unless data loss was
        accepted explicitly, in which case recovery goes on from the segments that are left.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self.report = ReplayReport()
        saved, next_segment = self._read_checkpoint()
        segments = [path for number, path in self.segments() if number >= next_segment]

        def records() -> Iterator[Record]:
            for path in segments:
                yield from read_segment(path, self.report)

        return saved, records()

    def _read_checkpoint(self) -> tuple[Checkpoint | None, int]:
        legacy = self.directory / checkpoint.LEGACY_PICKLE
        found = checkpoint.checkpoints(self.directory)
        try:
            if found:
                return checkpoint.read(found[-1])
            if legacy.exists():
                return self._convert_legacy(legacy)
        except CheckpointUnreadable as exc:
            self._unreadable(found[-1] if found else legacy, exc)
        return None, 0

    def _convert_legacy(self, path: Path) -> tuple[Checkpoint, int]:
        """A version 1 pickle is read once (restricted to numpy arrays) and rewritten as Arrow."""
        saved, next_segment = checkpoint.read_legacy(path)
        checkpoint.write(self.directory, saved, next_segment)
        path.unlink()
        fsync_directory(self.directory)
        log.info("%s: converted the version 1 snapshot to an Arrow checkpoint", self.directory)
        return saved, next_segment

    def _unreadable(self, path: Path, exc: CheckpointUnreadable) -> None:
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        os.rename(path, aside)
        message = f"the checkpoint {path} cannot be read ({exc}); it was moved to {aside.name}"
        if not self.accept_data_loss:
            raise SnapshotUnreadable(
                message + ". The log segments it covered are gone: start with --accept-data-loss to "
                "continue from the remaining segments only"
            )
        log.error("%s; continuing from the remaining segments (--accept-data-loss)", message)
        self.report.corrupt += 1

    def segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("segment-*.wal"):
            suffix = path.stem.split("-", 1)[1]
            if suffix.isdigit():
                found.append((int(suffix), path))
        return sorted(found)

    # -- writing ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes in the current segment."""
        return self._size

    def open_new_segment(self) -> int:
        """Close the current segment (fsynced) and start the next one; return its number."""
        self.close()
        self._segment = max([n for n, _ in self.segments()], default=self._segment) + 1
        path = self.directory / f"segment-{self._segment:08d}.wal"
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            fsync_directory(self.directory)
        except OSError as exc:
            self._broken = f"cannot open {path}: {exc.strerror}"
            raise StorageUnavailable(detail=self._broken) from exc
        self._size = 0
        self._broken = None
        return self._segment

    async def append(self, record: Record, batch_id: str | None = None) -> None:  # noqa: ARG002
        """Write one record (fsynced under the per-batch policy), or raise StorageUnavailable leaving
        the segment as it was. Batch ids are not kept locally: a retried batch is stored again."""
        self.write(record)

    def write(self, record: Record) -> None:
        if self._fd is None or self._broken:
            raise StorageUnavailable(detail=self._broken or "the log is closed")
        data = record.encode()
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, f"short write ({written} of {len(data)} bytes)")
            if self.fsync_every_record:
                os.fsync(self._fd)
        except OSError as exc:
            self._undo_partial_write()
            raise StorageUnavailable(detail=f"cannot write {self.directory}: {exc.strerror or exc}") from exc
        self._size += len(data)
        self._dirty = not self.fsync_every_record

    def _undo_partial_write(self) -> None:
        """Cut a torn record off the end so that later records stay readable."""
        try:
            assert self._fd is not None
            os.ftruncate(self._fd, self._size)
        except OSError as exc:
            self._broken = f"the log could not be repaired after a failed write: {exc.strerror}"
            log.error("%s: %s; ingestion answers 503 until a new segment opens", self.directory, self._broken)

    def sync(self) -> None:
        """fsync what was written; a failure breaks the log (503s) rather than promise durability."""
        if self._fd is not None and self._dirty:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._broken = f"fsync failed: {exc.strerror}"
                raise
            self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.error("fsync of %s failed on close: %s", self.directory, exc.strerror)
            finally:
                os.close(self._fd)
                self._fd = None

    # -- maintenance --------------------------------------------------------------------------

    async def maintain(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Periodic care: heal a broken segment, fsync (interval policy), compact when too large."""
        try:
            if self._broken:  # the disk may have room again
                self.open_new_segment()
                self._problems.resolved("storage", "%s: the log is writable again", self.directory)
            if self._dirty:
                await asyncio.to_thread(self.sync)
            if self._size >= self.compact_bytes:
                await self.compact(take_checkpoint)
        except Exception as exc:  # the maintenance loop keeps the logs durable: it must outlive this
            detail = exc.detail if isinstance(exc, StorageUnavailable) else f"{type(exc).__name__}: {exc}"
            self._problems.log(
                logging.ERROR, "storage", "%s: storage maintenance failed: %s", self.directory, detail
            )

    @property
    def needs_final_checkpoint(self) -> bool:
        """Rows sit in segments (new or older): a checkpoint at shutdown makes the next start fast."""
        return self._size > 0 or len(self.segments()) > 1

    async def compact(self, take_checkpoint: Callable[[], Checkpoint]) -> None:
        """Checkpoint the window and delete the segments it covers (the file work in a thread).

        Compactions never overlap, and cancelling a caller does not cancel one that is writing:
        shutdown waits for it, then compacts what came after.
        """
        while self._compaction is not None and not self._compaction.done():
            await asyncio.shield(self._compaction)
        next_segment = self.open_new_segment()
        saved = take_checkpoint()
        self._compaction = asyncio.create_task(asyncio.to_thread(self._write_checkpoint, saved, next_segment))
        await asyncio.shield(self._compaction)

    def _write_checkpoint(self, saved: Checkpoint, next_segment: int) -> None:
        checkpoint.write(self.directory, saved, next_segment)
        for path in checkpoint.checkpoints(self.directory)[:-1]:
            shutil.rmtree(path)
        for number, path in self.segments():
            if number < next_segment:
                path.unlink(missing_ok=True)

    # -- references ---------------------------------------------------------------------------

    def save_reference(self, frame: pd.DataFrame) -> None:
        """Persist a replaced reference atomically (unique temp file, fsync, rename); it wins at the
        next start."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        replace_atomically(self.directory / REFERENCE, buffer.getvalue())

    def saved_reference(self) -> pd.DataFrame | None:
        path = self.directory / REFERENCE
        return pd.read_parquet(path) if path.is_file() and not path.is_symlink() else None
