"""The local journal: log segments, checkpoints, recovery, file modes, legacy snapshots."""

from __future__ import annotations

import asyncio
import os
import pickle
import resource
import signal
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor_service.errors import SnapshotUnreadable, StorageUnavailable
from monitor_service.journal import Checkpoint, Record, ReplayReport
from monitor_service.journal.local import LocalJournal
from monitor_service.journal.records import read_segment
from monitor_service.window import WindowRows


def _records(count: int) -> list[Record]:
    return [
        Record("rows" if i % 3 else "labels", 1000.0 + i, bool(i % 2), f'{{"n": {i}}}'.encode())
        for i in range(count)
    ]


def _journal(directory: Path, *, per_record: bool = False, accept_data_loss: bool = False) -> LocalJournal:
    return LocalJournal(
        directory, fsync_every_record=per_record, compact_bytes=1 << 30, accept_data_loss=accept_data_loss
    )


def _opened(directory: Path, *, per_record: bool = False) -> LocalJournal:
    journal = _journal(directory, per_record=per_record)
    saved, records = journal.recover()
    assert saved is None and list(records) == []
    journal.open_new_segment()
    return journal


def _written(tmp_path: Path, records: list[Record]) -> tuple[LocalJournal, Path]:
    log = _opened(tmp_path / "m")
    for record in records:
        log.write(record)
    log.close()
    return log, log.segments()[-1][1]


def _checkpoint(values: list[float]) -> Checkpoint:
    strings = np.empty(len(values), dtype=object)
    strings[:] = [f"c{int(v)}" if v % 2 else None for v in values]
    rows = WindowRows({"x": np.array(values), "cut": strings}, np.array(values) + 1000.0)
    return Checkpoint(rows, [("late-1", 4.5, 2000.0), ("late-2", 7.0, 2001.0)], expired=3)


def test_log_records_round_trip_in_order(tmp_path: Path) -> None:
    records = _records(50)
    _, path = _written(tmp_path, records)
    report = ReplayReport()
    assert list(read_segment(path, report)) == records
    assert (report.records, report.corrupt) == (50, 0)


@pytest.mark.parametrize("cut", [1, 10, 17, 20])
def test_log_torn_tail_keeps_every_record_before_it(tmp_path: Path, cut: int) -> None:
    records = _records(10)
    _, path = _written(tmp_path, records)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - cut)
    report = ReplayReport()
    assert list(read_segment(path, report)) == records[:9]
    assert report.corrupt == 1


def test_log_corrupt_record_stops_replay_of_its_segment(tmp_path: Path) -> None:
    records = _records(10)
    _, path = _written(tmp_path, records)
    data = bytearray(path.read_bytes())
    offset = sum(len(r.encode()) for r in records[:4]) + 22 + 2  # inside the body of the fifth record
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    report = ReplayReport()
    assert list(read_segment(path, report)) == records[:4]
    assert report.corrupt == 1


def test_log_short_write_is_undone_and_log_stays_readable(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m", per_record=True)
    records = _records(3)
    log.write(records[0])
    path = log.segments()[-1][1]
    size = path.stat().st_size
    # A real torn write: the kernel stops the file 10 bytes further (EFBIG past the limit).
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, previous_limit[1]))
    try:
        with pytest.raises(StorageUnavailable) as refused:
            log.write(records[1])
        assert "cannot write" in refused.value.detail
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert path.stat().st_size == size
    log.write(records[2])
    log.close()
    report = ReplayReport()
    assert list(read_segment(path, report)) == [records[0], records[2]]
    assert report.corrupt == 0


def test_log_write_to_full_disk_raises_storage_unavailable(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m")
    assert log._fd is not None
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)  # the kernel now answers ENOSPC to every write
    os.close(full)
    with pytest.raises(StorageUnavailable) as refused:
        log.write(_records(1)[0])
    assert "No space left" in refused.value.detail
    assert str(tmp_path) not in str(refused.value), "client-facing messages never name a path"
    with pytest.raises(StorageUnavailable):
        log.write(_records(1)[0])
    assert log.open_new_segment() == 2
    log.write(_records(1)[0])


def test_checkpoint_covers_older_segments_and_recovery_replays_newer(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m")
    old, new = _records(4), _records(7)[4:]
    for record in old:
        log.write(record)
    asyncio.run(log.compact(lambda: _checkpoint([0.0, 1.0, 2.0])))
    for record in new:
        log.write(record)
    log.close()
    assert len(log.segments()) == 1
    saved, records = _journal(tmp_path / "m").recover()
    assert saved is not None
    assert saved.window.columns["x"].tolist() == [0.0, 1.0, 2.0]
    assert saved.window.columns["cut"].tolist() == [None, "c1", None]
    assert saved.window.arrival.tolist() == [1000.0, 1001.0, 1002.0]
    assert saved.pending == [("late-1", 4.5, 2000.0), ("late-2", 7.0, 2001.0)]
    assert saved.expired == 3
    assert list(records) == new


def test_checkpoint_is_arrow_files_readable_without_the_monitor(tmp_path: Path) -> None:
    import pyarrow.ipc as ipc

    log = _opened(tmp_path / "m")
    asyncio.run(log.compact(lambda: _checkpoint([5.0, 6.0])))
    (directory,) = (tmp_path / "m").glob("checkpoint-*")
    table = ipc.open_file(directory / "window.arrow").read_all()
    assert table.column("column:x").to_pylist() == [5.0, 6.0]
    assert table.column("arrival").to_pylist() == [1005.0, 1006.0]


def test_journal_files_are_the_owners_only(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m")
    log.write(_records(1)[0])
    asyncio.run(log.compact(lambda: _checkpoint([1.0])))
    log.save_reference(pd.DataFrame({"x": [1.0, 2.0]}))
    log.close()
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o700
    files = [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"window.arrow", "pending.arrow", "meta.json", "reference.parquet"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o600)}


def test_journal_touches_no_disk_before_recovery(tmp_path: Path) -> None:
    _journal(tmp_path / "not-yet")
    assert not (tmp_path / "not-yet").exists()


def test_unreadable_checkpoint_is_moved_aside_and_stops_recovery(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m")
    asyncio.run(log.compact(lambda: _checkpoint([1.0, 2.0])))
    log.close()
    (directory,) = (tmp_path / "m").glob("checkpoint-*")
    (directory / "window.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(SnapshotUnreadable, match="--accept-data-loss"):
        _journal(tmp_path / "m").recover()
    assert not directory.exists()
    assert len(list((tmp_path / "m").glob("checkpoint-*.unreadable-*"))) == 1


def test_unknown_checkpoint_version_is_never_read_as_an_empty_window(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m")
    asyncio.run(log.compact(lambda: _checkpoint([1.0])))
    (directory,) = (tmp_path / "m").glob("checkpoint-*")
    meta = directory / "meta.json"
    meta.write_text(meta.read_text().replace('"version": 2', '"version": 99'))
    with pytest.raises(SnapshotUnreadable, match="version 99"):
        _journal(tmp_path / "m").recover()


def test_accepting_data_loss_continues_from_the_remaining_segments(tmp_path: Path) -> None:
    log = _opened(tmp_path / "m")
    asyncio.run(log.compact(lambda: _checkpoint([1.0])))
    later = _records(2)
    for record in later:
        log.write(record)
    log.close()
    (directory,) = (tmp_path / "m").glob("checkpoint-*")
    (directory / "meta.json").unlink()
    journal = _journal(tmp_path / "m", accept_data_loss=True)
    saved, records = journal.recover()
    assert saved is None
    assert list(records) == later
    assert journal.report.corrupt == 1


class _OldWindowSnapshot:
    """Stands for monitor_service.window.WindowSnapshot of version 1, to write an old pickle."""

    def __init__(self, columns: dict[str, np.ndarray], arrival: np.ndarray) -> None:
        self.columns = columns
        self.arrival = arrival


_OldWindowSnapshot.__module__ = "monitor_service.window"
_OldWindowSnapshot.__qualname__ = "WindowSnapshot"


def _write_version_1_snapshot(directory: Path, state: object, next_segment: int = 3) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"version": 1, "next_segment": next_segment, "state": state}
    import monitor_service.window as window_module

    window_module.WindowSnapshot = _OldWindowSnapshot  # type: ignore[attr-defined]
    try:
        (directory / "snapshot.pkl").write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        del window_module.WindowSnapshot  # type: ignore[attr-defined]


def test_version_1_pickle_snapshot_is_converted_once_to_arrow(tmp_path: Path) -> None:
    strings = np.empty(2, dtype=object)
    strings[:] = ["Ideal", None]
    old = _OldWindowSnapshot({"x": np.array([1.5, np.nan]), "cut": strings}, np.array([10.0, 11.0]))
    _write_version_1_snapshot(tmp_path / "m", {"window": old, "pending": [("r-9", "1", 99.0)], "expired": 4})
    saved, _ = _journal(tmp_path / "m").recover()
    assert saved is not None
    assert saved.window.columns["cut"].tolist() == ["Ideal", None]
    assert np.isnan(saved.window.columns["x"][1])
    assert saved.pending == [("r-9", "1", 99.0)] and saved.expired == 4
    assert not (tmp_path / "m" / "snapshot.pkl").exists()
    assert len(list((tmp_path / "m").glob("checkpoint-00000003"))) == 1
    again, _ = _journal(tmp_path / "m").recover()  # now read from Arrow
    assert again is not None and again.window.columns["x"][0] == 1.5


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned-by-pickle",))


def test_crafted_pickle_snapshot_runs_nothing_and_stops_start_up(tmp_path: Path) -> None:
    _write_version_1_snapshot(tmp_path / "m", {"window": _Exploit(), "pending": [], "expired": 0})
    with pytest.raises(SnapshotUnreadable, match=r"posix\.system|os\.system"):
        _journal(tmp_path / "m").recover()
    assert not Path("pwned-by-pickle").exists()
    assert len(list((tmp_path / "m").glob("snapshot.pkl.unreadable-*"))) == 1


def test_log_unwritable_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        _journal(blocker / "m").recover()
