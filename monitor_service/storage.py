"""Durable log and snapshots under each model's window. No HTTP, no Evidently.

Every accepted request body is appended to the model's current log segment before the rows enter
the window and before the 202 goes out. A record is `header + body`; the header holds a magic
number, the body length, a CRC-32 and the arrival time, so replay reproduces the window exactly
(age eviction included) and stops at a torn or corrupt tail without losing the records before it.

Compaction writes a snapshot of the window (and of the labels waiting for their rows) to a
temporary file, fsyncs it, renames it over the previous one, and then deletes the segments the
snapshot covers. Recovery loads the snapshot and replays the newer segments in order.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from monitor_service.errors import StorageUnavailable

log = logging.getLogger(__name__)

MAGIC = b"DMW1"
# magic, body length, crc32 of (time, kind, body), arrival time, kind (0 rows, 1 labels), body format
# (bodies.py: 0 JSON, 1 NDJSON, 2 Arrow, +16 gzip; logs written before formats existed hold 0 or 1)
_HEADER = struct.Struct("<4sIIdBB")
_KINDS = ("rows", "labels")
SNAPSHOT = "snapshot.pkl"
REFERENCE = "reference.parquet"
SNAPSHOT_VERSION = 1

RecordKind = Literal["rows", "labels"]


@dataclass(frozen=True)
class Record:
    """One acknowledged request: what it was, when it arrived, and its body as received."""

    kind: RecordKind
    arrived: float
    body_format: int
    body: bytes

    def encode(self) -> bytes:
        meta = struct.pack("<dBB", self.arrived, _KINDS.index(self.kind), self.body_format)
        crc = zlib.crc32(self.body, zlib.crc32(meta))
        return _HEADER.pack(
            MAGIC, len(self.body), crc, self.arrived, _KINDS.index(self.kind), self.body_format
        ) + (self.body)


@dataclass
class ReplayReport:
    """What recovery found: records replayed, and where a torn or corrupt tail was cut off."""

    records: int = 0
    corrupt: int = 0


def read_segment(path: Path, report: ReplayReport) -> Iterator[Record]:
    """Records of one segment in order; stops (and counts) at the first torn or corrupt record."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        problem = None
        if len(data) - offset < _HEADER.size:
            problem = "truncated header"
        else:
            magic, length, crc, arrived, kind, body_format = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            body = data[start : start + length]
            meta = struct.pack("<dBB", arrived, kind, body_format)
            if magic != MAGIC or kind >= len(_KINDS):
                problem = "bad record header"
            elif len(body) < length:
                problem = "truncated record"
            elif zlib.crc32(body, zlib.crc32(meta)) != crc:
                problem = "checksum mismatch"
        if problem:
            report.corrupt += 1
            log.error("%s at byte %d of %s: the rest of this segment is skipped", problem, offset, path)
            return
        report.records += 1
        yield Record(_KINDS[kind], arrived, body_format, bytes(body))
        offset = start + length


class ModelLog:
    """The segments and the snapshot of one model, in `directory`."""

    def __init__(self, directory: Path, fsync_every_record: bool) -> None:
        self.directory = directory
        self.fsync_every_record = fsync_every_record
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._segment = 0
        self._size = 0
        self.dirty = False
        self.broken: str | None = None

    def segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("segment-*.wal"):
            try:
                found.append((int(path.stem.split("-", 1)[1]), path))
            except ValueError:
                continue
        return sorted(found)

    @property
    def size(self) -> int:
        return self._size

    def open_new_segment(self) -> int:
        """Close the current segment (fsynced) and start the next one; return its number."""
        self.close()
        existing = self.segments()
        self._segment = max([n for n, _ in existing], default=self._segment) + 1
        path = self.directory / f"segment-{self._segment:08d}.wal"
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            _fsync_directory(self.directory)
        except OSError as exc:
            self.broken = f"cannot open {path}: {exc.strerror}"
            raise StorageUnavailable(self.broken) from exc
        self._size = 0
        self.broken = None
        return self._segment

    def append(self, record: Record) -> None:
        """Write one record (and fsync it under the per-batch policy), or raise StorageUnavailable
        leaving the segment as it was."""
        if self._fd is None or self.broken:
            raise StorageUnavailable(self.broken or "the log is closed")
        data = record.encode()
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, f"short write ({written} of {len(data)} bytes)")
            if self.fsync_every_record:
                os.fsync(self._fd)
        except OSError as exc:
            self._undo_partial_write()
            raise StorageUnavailable(f"cannot write the log: {exc.strerror or exc}") from exc
        self._size += len(data)
        self.dirty = not self.fsync_every_record

    def _undo_partial_write(self) -> None:
        """Cut a torn record off the end so that later records stay readable."""
        try:
            assert self._fd is not None
            os.ftruncate(self._fd, self._size)
        except OSError as exc:
            self.broken = f"the log could not be repaired after a failed write: {exc.strerror}"
            log.error("%s; ingestion answers 503 until the next successful compaction", self.broken)

    def sync(self) -> None:
        """fsync what was written; a failure breaks the log (503s) rather than promise durability."""
        if self._fd is not None and self.dirty:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self.broken = f"fsync failed: {exc.strerror}"
                raise
            self.dirty = False

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.error("fsync of %s failed on close: %s", self.directory, exc.strerror)
            finally:
                os.close(self._fd)
                self._fd = None

    def write_snapshot(self, state: dict[str, Any], next_segment: int) -> None:
        """Persist `state` as covering every segment before `next_segment`, then delete those."""
        tmp = self.directory / f"{SNAPSHOT}.{uuid.uuid4().hex}.tmp"
        payload = {"version": SNAPSHOT_VERSION, "next_segment": next_segment, "state": state}
        try:
            with tmp.open("wb") as handle:
                pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / SNAPSHOT)
        finally:
            tmp.unlink(missing_ok=True)  # a failed write must not leave its remains on a full disk
        _fsync_directory(self.directory)
        for number, path in self.segments():
            if number < next_segment:
                path.unlink(missing_ok=True)

    def save_reference(self, frame: pd.DataFrame) -> Path:
        """Persist a replaced reference atomically (temp file, fsync, rename); it wins at the next start."""
        path = self.directory / REFERENCE
        tmp = self.directory / (REFERENCE + ".tmp")
        frame.to_parquet(tmp, index=False)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(self.directory)
        return path

    def saved_reference(self) -> pd.DataFrame | None:
        path = self.directory / REFERENCE
        return pd.read_parquet(path) if path.exists() else None

    def recover(self) -> tuple[dict[str, Any] | None, Iterator[Record], ReplayReport]:
        """The last snapshot's state (or None) and the records written after it."""
        report = ReplayReport()
        snapshot_path = self.directory / SNAPSHOT
        state = None
        next_segment = 0
        if snapshot_path.exists():
            try:
                with snapshot_path.open("rb") as handle:
                    payload = pickle.load(handle)  # written by this process's own code only
            except Exception:  # unreadable: start from the segments that are left
                log.exception(
                    "the snapshot %s cannot be read; replaying the remaining log only", snapshot_path
                )
                report.corrupt += 1
                payload = {}
            if payload.get("version") == SNAPSHOT_VERSION:
                state, next_segment = payload["state"], payload["next_segment"]
        segments = [path for number, path in self.segments() if number >= next_segment]

        def records() -> Iterator[Record]:
            for path in segments:
                yield from read_segment(path, report)

        return state, records(), report


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
