from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

import numpy as np
import pytest

from monitor_service.errors import StorageUnavailable
from monitor_service.storage import ModelLog, Record, ReplayReport, read_segment
from monitor_service.window import WindowSnapshot


def _records(count: int) -> list[Record]:
    return [
        Record("rows" if i % 3 else "labels", 1000.0 + i, bool(i % 2), f'{{"n": {i}}}'.encode())
        for i in range(count)
    ]


def _written(tmp_path: Path, records: list[Record]) -> tuple[ModelLog, Path]:
    log = ModelLog(tmp_path / "m", fsync_every_record=False)
    log.open_new_segment()
    for record in records:
        log.append(record)
    log.close()
    return log, log.segments()[-1][1]


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
    log = ModelLog(tmp_path / "m", fsync_every_record=True)
    log.open_new_segment()
    records = _records(3)
    log.append(records[0])
    path = log.segments()[-1][1]
    size = path.stat().st_size
    # A real torn write: the kernel stops the file 10 bytes further (EFBIG past the limit).
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, previous_limit[1]))
    try:
        with pytest.raises(StorageUnavailable, match="cannot write"):
            log.append(records[1])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert path.stat().st_size == size
    log.append(records[2])
    log.close()
    report = ReplayReport()
    assert list(read_segment(path, report)) == [records[0], records[2]]
    assert report.corrupt == 0


def test_log_write_to_full_disk_raises_storage_unavailable(tmp_path: Path) -> None:
    log = ModelLog(tmp_path / "m", fsync_every_record=False)
    log.open_new_segment()
    assert log._fd is not None
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)  # the kernel now answers ENOSPC to every write
    os.close(full)
    with pytest.raises(StorageUnavailable, match="No space left"):
        log.append(_records(1)[0])
    with pytest.raises(StorageUnavailable):
        log.append(_records(1)[0])
    assert log.open_new_segment() == 2
    log.append(_records(1)[0])


def test_log_snapshot_covers_older_segments_and_recovery_replays_newer(tmp_path: Path) -> None:
    log = ModelLog(tmp_path / "m", fsync_every_record=False)
    log.open_new_segment()
    old, new = _records(4), _records(7)[4:]
    for record in old:
        log.append(record)
    next_segment = log.open_new_segment()
    snapshot = WindowSnapshot({"x": np.arange(3.0)}, np.arange(3.0))
    log.write_snapshot({"window": snapshot}, next_segment)
    for record in new:
        log.append(record)
    log.close()
    assert [n for n, _ in log.segments()] == [next_segment]
    state, records, report = ModelLog(tmp_path / "m", fsync_every_record=False).recover()
    assert state is not None
    assert state["window"].columns["x"].tolist() == [0.0, 1.0, 2.0]
    assert list(records) == new
    assert report.records == 3


def test_log_unwritable_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        ModelLog(blocker / "m", fsync_every_record=False)
