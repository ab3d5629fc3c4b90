"""Stored reports: one Evidently snapshot per stored calculation and model, with bounded retention.

A report is Evidently's snapshot JSON (`<id>.json`, loadable by Evidently itself) plus a small
entry (`<id>.meta.json`: its calculation time and verdict) that the listing reads, so nothing has
to parse snapshots to list them. Both are written atomically (a fresh temporary file opened with
O_EXCL|O_NOFOLLOW, fsync, rename, fsync of the directory), files 0600 in a 0700 directory; the entry
is written last and is what makes a report exist, so a crash leaves no half report behind.

Where the bytes live is a `ReportBackend`: a directory under `storage.data_dir/<model>/reports/`
on one node, memory when there is no data_dir, or (cluster mode) the cluster's files bucket
(cluster/reports.py), where other members write too: they tell the store through `learn` and
`forget`. No HTTP and no Evidently here; HTML is rendered by the engine on request.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from monitor_service.config import ReportsConfig
from monitor_service.files import replace_atomically
from monitor_service.results import CalculationResult, ReportPage

log = logging.getLogger(__name__)

REPORT_ID = re.compile(r"^\d{8}T\d{9}Z-[0-9a-f]{8}$")  # 20261129T230504499Z-3fa2c1d0: sorts by time
MEMORY_MAX_BYTES = 64 * 1024 * 1024  # without a data_dir, reports live in memory: keep that small
SNAPSHOT_SUFFIX, ENTRY_SUFFIX = ".json", ".meta.json"
ORPHAN_GRACE = 600.0  # a snapshot without entry older than this is a write a crash interrupted


class ReportBackend(Protocol):
    """Where reports are kept, by file name. Implementations make `write` atomic and raise
    FileNotFoundError from `read` for a file they do not hold, OSError for any other failure."""

    def write(self, name: str, data: bytes) -> None: ...
    def read(self, name: str) -> bytes: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> list[str]: ...


class DirectoryBackend:
    """Files in one directory (created 0700; a symlink in its place is refused)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        if directory.is_symlink():
            raise OSError(f"{directory} is a symlink; refusing to keep reports there")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)

    def write(self, name: str, data: bytes) -> None:
        replace_atomically(self.directory / name, data)

    def read(self, name: str) -> bytes:
        fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def delete(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        return [p.name for p in self.directory.iterdir() if not p.name.startswith(".")]

    def remove_leftovers(self) -> None:
        """Temporary files of writes a crash interrupted."""
        for path in self.directory.glob(".*.tmp"):
            path.unlink(missing_ok=True)


class MemoryBackend:
    """Reports kept in this process only (no data_dir): lost at restart."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def write(self, name: str, data: bytes) -> None:
        with self._lock:
            self._files[name] = bytes(data)

    def read(self, name: str) -> bytes:
        with self._lock:
            found = self._files.get(name)
        if found is None:
            raise FileNotFoundError(name)
        return found

    def delete(self, name: str) -> None:
        with self._lock:
            self._files.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._files)


@dataclass(frozen=True)
class ReportEntry:
    """One stored report: which calculation, when, how big, and its verdict."""

    id: str
    model: str
    time: float  # the calculation's finished_at, in milliseconds
    size_bytes: int
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "time_iso": datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds"),
            "size_bytes": self.size_bytes,
            **self.summary,
            "links": {"html": f"/v1/models/{self.model}/report?id={self.id}"},
        }


def summary_of(result: CalculationResult) -> dict[str, Any]:
    """The verdict of a calculation, as the listing shows it."""
    return {
        "dataset_drift": result.dataset_drift,
        "drifted_columns": result.drifted_columns,
        "tested_columns": result.tested_columns,
        "current_rows": result.current_rows,
        "model_quality": dict(result.model_quality),
        "failed_tests": [t.name for t in result.failed_tests],
        "critical_tests_failed": sum(t.critical for t in result.failed_tests),
    }


def new_report_id(at: float) -> str:
    stamp = datetime.fromtimestamp(at, UTC)
    return f"{stamp:%Y%m%dT%H%M%S}{stamp.microsecond // 1000:03d}Z-{secrets.token_hex(4)}"


class ReportStore:
    """The stored reports of one model. Thread-safe: calculations write, the API reads."""

    def __init__(
        self,
        model: str,
        backend: ReportBackend,
        settings: ReportsConfig,
        *,
        max_bytes_cap: int | None = None,
        renderer: Callable[[str], ReportPage] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.backend = backend
        self.settings = settings
        self.max_bytes = _min_of(settings.max_bytes, max_bytes_cap)
        self._render = renderer or _render_page
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, ReportEntry] = {}
        self._since_last = 0
        self._pages: OrderedDict[str, ReportPage] = OrderedDict()
        self.written = 0
        self.write_errors = 0
        self.removed = 0
        self._load()

    @classmethod
    def for_model(cls, model: str, data_dir: Path | None, settings: ReportsConfig) -> ReportStore:
        """On disk under `data_dir/<model>/reports/`, or in memory (at most 64 MiB) without data_dir."""
        if data_dir is None:
            return cls(model, MemoryBackend(), settings, max_bytes_cap=MEMORY_MAX_BYTES)
        backend = DirectoryBackend(data_dir / model / "reports")
        backend.remove_leftovers()
        return cls(model, backend, settings)

    # ------------------------------------------------------------------ writing

    def due(self, at: float, number: int | None = None) -> bool:
        """Count one calculation finished at `at`; True when its report should be stored
        (`reports.every`: every N-th calculation, or at most one per period). `number` is the
        calculation's number among the model's (in cluster mode the cluster's count, whichever
        member calculates): every N-th then counts from the newest stored report's number, which
        every member lists, instead of this store's own calls."""
        with self._lock:
            if not self.settings.enabled:
                return False
            self._since_last += 1
            newest = self._newest()
            every = self.settings.every
            if newest is None:
                return True
            if isinstance(every, int):
                last = newest.summary.get("calculation")
                if number is not None and isinstance(last, int):
                    return number - last >= every or number < last  # < : the count restarted
                return self._since_last >= every
            return at - newest.time >= every - min(1.0, 0.05 * every)

    def put(self, result: CalculationResult, snapshot_json: str, number: int | None = None) -> ReportEntry:
        """Store the snapshot of `result`, then apply the retention. Raises OSError (counted) when
        the backend cannot write; the reports already kept stay."""
        data = snapshot_json.encode()
        at = round(result.finished_at, 3)
        summary = summary_of(result) if number is None else {**summary_of(result), "calculation": number}
        entry = ReportEntry(new_report_id(at), self.model, at, len(data), summary)
        try:
            self.backend.write(entry.id + SNAPSHOT_SUFFIX, data)
            self.backend.write(entry.id + ENTRY_SUFFIX, json.dumps(asdict(entry)).encode())
        except OSError:
            with self._lock:
                self.write_errors += 1
            self.backend.delete(entry.id + SNAPSHOT_SUFFIX)
            raise
        with self._lock:
            self._entries[entry.id] = entry
            self._since_last = 0
            self.written += 1
        self.prune()
        return entry

    def learn(self, entry: ReportEntry) -> bool:
        """A report another writer stored (cluster mode); False when it was known already."""
        if entry.model != self.model or not REPORT_ID.match(entry.id):
            return False
        with self._lock:
            known = entry.id in self._entries
            self._entries[entry.id] = entry
        return not known

    def forget(self, report_id: str) -> bool:
        """Drop a report from the listing (removed here, or by another writer in cluster mode);
        False when it was not listed."""
        with self._lock:
            self._pages.pop(report_id, None)
            return self._entries.pop(report_id, None) is not None

    def prune(self, now: float | None = None) -> list[str]:
        """Delete the oldest reports beyond `keep`, `max_age` and `max_bytes` (never the newest one),
        and snapshots left without entry by a crash (older than ORPHAN_GRACE: a snapshot another
        writer is storing right now has no entry yet either)."""
        now = self._clock() if now is None else now
        self._drop_orphans(now)
        with self._lock:
            ordered = sorted(self._entries.values(), key=lambda e: (e.time, e.id))
            total = sum(e.size_bytes for e in ordered)
            doomed = []
            while len(ordered) > 1:
                oldest = ordered[0]
                too_many = self.settings.keep is not None and len(ordered) > self.settings.keep
                too_old = self.settings.max_age is not None and oldest.time < now - self.settings.max_age
                too_big = self.max_bytes is not None and total > self.max_bytes
                if not (too_many or too_old or too_big):
                    break
                ordered.pop(0)
                total -= oldest.size_bytes
                doomed.append(oldest.id)
        removed = []
        for report_id in doomed:  # entry first: a crash in between leaves an orphan (see above)
            try:
                self.backend.delete(report_id + ENTRY_SUFFIX)
                self.backend.delete(report_id + SNAPSHOT_SUFFIX)
            except OSError as exc:  # kept listed until a later prune manages it; the report stands
                log.warning("model %s: report %s not removed yet: %s", self.model, report_id, exc)
                break
            self.forget(report_id)
            removed.append(report_id)
        with self._lock:
            self.removed += len(removed)
        return removed

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[ReportEntry]:
        """Newest first."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: (e.time, e.id), reverse=True)

    def latest(self) -> ReportEntry | None:
        with self._lock:
            return self._newest()

    def get(self, report_id: str) -> ReportEntry | None:
        with self._lock:
            return self._entries.get(report_id)

    def at(self, when: float) -> ReportEntry | None:
        """The report in force at `when`: the newest calculated at or before it (to the millisecond)."""
        limit = round(when * 1000)
        with self._lock:
            candidates = [e for e in self._entries.values() if round(e.time * 1000) <= limit]
            return max(candidates, key=lambda e: (e.time, e.id), default=None)

    def oldest(self) -> ReportEntry | None:
        with self._lock:
            return min(self._entries.values(), key=lambda e: (e.time, e.id), default=None)

    def read(self, entry: ReportEntry) -> str:
        """The snapshot JSON of a listed report (FileNotFoundError, and forgotten, when another
        writer removed it meanwhile)."""
        try:
            return self.backend.read(entry.id + SNAPSHOT_SUFFIX).decode()
        except FileNotFoundError:
            self.forget(entry.id)
            raise

    def page(self, entry: ReportEntry) -> ReportPage:
        """The rendered HTML page (the two last ones are cached: reports never change)."""
        with self._lock:
            cached = self._pages.get(entry.id)
            if cached is not None:
                self._pages.move_to_end(entry.id)
                return cached
        page = self._render(self.read(entry))
        with self._lock:
            self._pages[entry.id] = page
            while len(self._pages) > 2:
                self._pages.popitem(last=False)
        return page

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.size_bytes for e in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    # ------------------------------------------------------------------ internals

    def _drop_orphans(self, now: float) -> None:
        names = self.backend.names()
        with self._lock:
            listed = set(self._entries)
        for name in names:
            if not name.endswith(SNAPSHOT_SUFFIX) or name.endswith(ENTRY_SUFFIX):
                continue
            report_id = name[: -len(SNAPSHOT_SUFFIX)]
            written = _time_of(report_id)
            if report_id not in listed and written is not None and written < now - ORPHAN_GRACE:
                try:
                    self.backend.delete(name)
                except OSError as exc:  # tried again at the next prune
                    log.warning("model %s: leftover %s not removed yet: %s", self.model, name, exc)
                    return

    def _newest(self) -> ReportEntry | None:
        return max(self._entries.values(), key=lambda e: (e.time, e.id), default=None)

    def _load(self) -> None:
        """Read the entries back; drop halves of reports a crash left (snapshot without entry)."""
        names = set(self.backend.names())
        for name in sorted(names):
            if not name.endswith(ENTRY_SUFFIX):
                continue
            report_id = name[: -len(ENTRY_SUFFIX)]
            if not REPORT_ID.match(report_id) or report_id + SNAPSHOT_SUFFIX not in names:
                self.backend.delete(name)
                continue
            try:
                raw = json.loads(self.backend.read(name))
                entry = ReportEntry(**raw)
                if entry.id != report_id or entry.model != self.model:
                    raise ValueError(f"entry {name} describes {entry.model}/{entry.id}")
            except (OSError, ValueError, TypeError) as exc:
                log.error("model %s: unreadable report entry %s skipped: %s", self.model, name, exc)
                continue
            self._entries[entry.id] = entry
        for name in names:
            if name.endswith(SNAPSHOT_SUFFIX) and not name.endswith(ENTRY_SUFFIX):
                if name[: -len(SNAPSHOT_SUFFIX)] not in self._entries:
                    self.backend.delete(name)
        if self._entries:
            self.prune()


def _render_page(snapshot_json: str) -> ReportPage:
    from monitor_service.engine.snapshot import snapshot_json_html

    return snapshot_json_html(snapshot_json)


def _time_of(report_id: str) -> float | None:
    """The calculation time a report id starts with (None for names that are no report id)."""
    if not REPORT_ID.match(report_id):
        return None
    stamp = datetime.strptime(report_id[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    return stamp.timestamp()


def _min_of(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
