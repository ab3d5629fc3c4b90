"""ReportStore: atomic files with tight permissions, listing and lookup by id or time, retention."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from monitor_service.config import ReportsConfig
from monitor_service.reports import (
    ORPHAN_GRACE,
    REPORT_ID,
    DirectoryBackend,
    MemoryBackend,
    ReportStore,
    new_report_id,
)
from monitor_service.results import CalculationResult, ReportPage, TestOutcome

T0 = 1_764_450_000.0


def _result(at: float, **overrides: object) -> CalculationResult:
    values: dict[str, object] = {
        "model": "diamonds",
        "finished_at": at,
        "duration_seconds": 0.2,
        "current_rows": 500,
        "reference_rows": 10_000,
        "drift_share": 0.5,
        "dataset_drift": False,
        "drifted_columns": 1,
        "tested_columns": 9,
    }
    return CalculationResult(**{**values, **overrides})  # type: ignore[arg-type]


def _snapshot(label: str, size: int = 100) -> str:
    return json.dumps({"label": label, "padding": "x" * size})


def _pages(text: str) -> ReportPage:
    return ReportPage(f"<html>{json.loads(text)['label']}</html>", "default-src 'none'")


def _store(tmp_path: Path, **settings: object) -> ReportStore:
    config = ReportsConfig.model_validate(settings)
    backend = DirectoryBackend(tmp_path / "diamonds" / "reports")
    return ReportStore("diamonds", backend, config, renderer=_pages, clock=lambda: T0 + 10_000)


def test_report_store_writes_private_files_atomically(tmp_path: Path) -> None:
    store = _store(tmp_path)
    entry = store.put(_result(T0), _snapshot("first"))
    directory = tmp_path / "diamonds" / "reports"
    assert REPORT_ID.match(entry.id)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(p.name for p in directory.iterdir())
    assert files == [entry.id + ".json", entry.id + ".meta.json"]  # no temporary file left
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads((directory / (entry.id + ".json")).read_text())["label"] == "first"
    assert store.read(entry) == _snapshot("first")


def test_report_store_lists_newest_first_with_the_verdict(tmp_path: Path) -> None:
    store = _store(tmp_path)
    failed = TestOutcome("missing_share:carat", "missing_share", "carat", "fail", True, 9.0, "too many")
    store.put(_result(T0), _snapshot("a"))
    store.put(_result(T0 + 60, dataset_drift=True, drifted_columns=6, tests=(failed,)), _snapshot("b"))
    listed = [e.as_dict() for e in store.entries()]
    assert [e["time"] for e in listed] == [T0 + 60, T0]
    assert listed[0]["dataset_drift"] is True
    assert listed[0]["drifted_columns"] == 6
    assert listed[0]["failed_tests"] == ["missing_share:carat"]
    assert listed[0]["critical_tests_failed"] == 1
    assert listed[1]["dataset_drift"] is False
    assert listed[0]["links"]["html"] == f"/v1/models/diamonds/report?id={listed[0]['id']}"


def test_report_store_finds_the_report_in_force_at_a_time(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.put(_result(T0 + 0.1234), _snapshot("a"))
    second = store.put(_result(T0 + 60), _snapshot("b"))
    assert store.at(T0) is None  # before the first calculation
    assert store.at(T0 + 0.123) == first  # rounded to the millisecond, as the metric shows it
    assert store.at(T0 + 59.999) == first
    assert store.at(T0 + 60) == second
    assert store.at(T0 + 10**6) == second
    assert store.latest() == second
    assert store.get(first.id) == first
    assert store.get("20250101T000000000Z-00000000") is None


def test_report_store_keeps_at_most_keep_reports(tmp_path: Path) -> None:
    store = _store(tmp_path, keep=3, max_age=None, max_bytes=None)
    entries = [store.put(_result(T0 + i), _snapshot(str(i))) for i in range(5)]
    assert [e.id for e in store.entries()] == [e.id for e in reversed(entries[2:])]
    names = {p.name for p in (tmp_path / "diamonds" / "reports").iterdir()}
    assert not any(e.id in name for e in entries[:2] for name in names)
    assert store.removed == 2


def test_report_store_drops_reports_older_than_max_age(tmp_path: Path) -> None:
    store = _store(tmp_path, keep=None, max_age="1h", max_bytes=None)
    old = store.put(_result(T0 + 10_000 - 7200), _snapshot("old"))
    recent = store.put(_result(T0 + 10_000 - 60), _snapshot("recent"))
    assert store.get(old.id) is None
    assert store.latest() == recent


def test_report_store_stays_under_max_bytes_but_keeps_the_newest(tmp_path: Path) -> None:
    store = _store(tmp_path, keep=None, max_age=None, max_bytes=2500)
    for i in range(4):
        store.put(_result(T0 + i), _snapshot(str(i), size=1000))
    assert len(store) == 2
    assert store.total_bytes <= 2500
    huge = store.put(_result(T0 + 10), _snapshot("huge", size=10_000))
    assert [e.id for e in store.entries()] == [huge.id]  # over the limit alone, but the newest stays


def test_report_store_reads_its_reports_back_and_drops_half_written_ones(tmp_path: Path) -> None:
    store = _store(tmp_path)
    kept = store.put(_result(T0), _snapshot("kept"))
    directory = tmp_path / "diamonds" / "reports"
    orphan = directory / "20251129T000000000Z-0123abcd.json"  # a crash before its entry was written
    orphan.write_text(_snapshot("orphan"))
    leftover = directory / ".x.json.deadbeef.tmp"
    leftover.write_text("partial")
    reopened = ReportStore.for_model("diamonds", tmp_path, ReportsConfig())
    assert [e.id for e in reopened.entries()] == [kept.id]
    assert reopened.latest() == kept
    assert not orphan.exists()
    assert not leftover.exists()


def test_report_store_refuses_a_symlinked_directory(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "diamonds").mkdir()
    os.symlink(target, tmp_path / "diamonds" / "reports")
    with pytest.raises(OSError, match="symlink"):
        ReportStore.for_model("diamonds", tmp_path, ReportsConfig())


class _FullDisk(MemoryBackend):
    """Accepts snapshots but not their entries, like a disk that fills up between two writes."""

    def write(self, name: str, data: bytes) -> None:
        if name.endswith(".meta.json"):
            raise OSError(28, "No space left on device")
        super().write(name, data)


def test_report_store_counts_a_failed_write_and_leaves_no_half_report() -> None:
    backend = _FullDisk()
    store = ReportStore("diamonds", backend, ReportsConfig(), renderer=_pages)
    with pytest.raises(OSError, match="No space"):
        store.put(_result(T0), _snapshot("lost"))
    assert store.write_errors == 1
    assert backend.names() == []
    assert store.latest() is None


def test_report_store_without_data_dir_keeps_reports_in_memory_under_a_cap() -> None:
    store = ReportStore.for_model("diamonds", None, ReportsConfig(max_bytes=10**12))
    assert isinstance(store.backend, MemoryBackend)
    assert store.max_bytes == 64 * 1024 * 1024
    entry = store.put(_result(T0), _snapshot("memory"))
    assert store.read(entry) == _snapshot("memory")


@pytest.mark.parametrize(
    ("every", "expected"),
    [
        (1, [True, True, True, True, True]),
        (3, [True, False, False, True, False]),
        ("3m", [True, False, False, True, False]),  # calculations one minute apart
    ],
)
def test_report_store_is_due_on_its_cadence(tmp_path: Path, every: object, expected: list[bool]) -> None:
    store = _store(tmp_path, every=every)
    seen = []
    for i in range(5):
        at = T0 + 60 * i
        due = store.due(at)
        seen.append(due)
        if due:
            store.put(_result(at), _snapshot(str(i)))
    assert seen == expected


def test_report_store_is_never_due_when_disabled(tmp_path: Path) -> None:
    store = _store(tmp_path, enabled=False)
    assert not store.due(T0)


def test_report_store_renders_once_and_caches_the_page() -> None:
    calls: list[str] = []

    def render(text: str) -> ReportPage:
        calls.append(text)
        return _pages(text)

    store = ReportStore("diamonds", MemoryBackend(), ReportsConfig(), renderer=render, clock=lambda: T0 + 10)
    entry = store.put(_result(T0), _snapshot("page"))
    assert store.page(entry).html == "<html>page</html>"
    assert store.page(entry) == store.page(entry)
    assert len(calls) == 1
    later = store.put(replace(_result(T0 + 1)), _snapshot("later"))
    store.page(later)
    assert len(calls) == 2


def test_report_store_learns_and_forgets_reports_another_writer_stored() -> None:
    """Cluster mode: members share a backend; each store hears of the others' writes and removals."""
    backend = MemoryBackend()
    config = ReportsConfig(keep=5)
    writer = ReportStore("diamonds", backend, config, renderer=_pages, clock=lambda: T0 + 10)
    reader = ReportStore("diamonds", backend, config, renderer=_pages, clock=lambda: T0 + 10)
    entry = writer.put(_result(T0), _snapshot("shared"))
    assert reader.latest() is None
    assert reader.learn(entry) is True and reader.learn(entry) is False
    assert reader.latest() == entry and reader.page(entry).html == "<html>shared</html>"
    assert reader.learn(replace(entry, model="other")) is False  # another model's report
    assert reader.at(entry.time) == entry
    writer.prune(now=T0)  # nothing due
    backend.delete(entry.id + ".json")  # removed by another member; the news has not arrived yet
    with pytest.raises(FileNotFoundError):
        reader.read(entry)
    assert reader.latest() is None  # a report that cannot be read is forgotten at once
    assert reader.forget(entry.id) is False


def test_report_store_removes_snapshots_left_without_entry_after_a_grace_period() -> None:
    """A writer that died between the snapshot and its entry leaves a snapshot nothing lists; the
    next prune removes it once it is older than ORPHAN_GRACE, not while a writer may be storing it."""
    backend = MemoryBackend()
    now = [T0]
    store = ReportStore("diamonds", backend, ReportsConfig(), renderer=_pages, clock=lambda: now[0])
    old_orphan = new_report_id(T0 - ORPHAN_GRACE - 1) + ".json"
    fresh_orphan = new_report_id(T0 - 5) + ".json"
    for name in (old_orphan, fresh_orphan, "unrelated.json"):
        backend.write(name, b"{}")
    kept = store.put(_result(T0), _snapshot("kept"))
    assert sorted(backend.names()) == sorted(
        [fresh_orphan, "unrelated.json", kept.id + ".json", kept.id + ".meta.json"]
    )
    now[0] = T0 + ORPHAN_GRACE
    store.prune()
    assert sorted(backend.names()) == sorted(["unrelated.json", kept.id + ".json", kept.id + ".meta.json"])


class _DeletesFail(MemoryBackend):
    """A shared store that can be written but, for now, not deleted from (a cluster losing quorum)."""

    failing = True

    def delete(self, name: str) -> None:
        if self.failing:
            raise OSError("no quorum")
        super().delete(name)


def test_a_prune_that_cannot_delete_keeps_the_report_listed_and_the_new_one_stored() -> None:
    backend = _DeletesFail()
    store = ReportStore("diamonds", backend, ReportsConfig(keep=1), renderer=_pages, clock=lambda: T0)
    first = store.put(_result(T0), _snapshot("first"))
    second = store.put(_result(T0 + 60), _snapshot("second"))  # its prune fails: no exception
    assert [e.id for e in store.entries()] == [second.id, first.id]  # still listed: still there
    assert store.read(first) == _snapshot("first") and store.removed == 0
    backend.failing = False
    assert store.prune() == [first.id]
    assert [e.id for e in store.entries()] == [second.id] and store.removed == 1
    assert sorted(backend.names()) == sorted([second.id + ".json", second.id + ".meta.json"])


def test_every_nth_counts_the_models_calculations_whoever_ran_them() -> None:
    """Cluster mode: members take turns calculating; `every: 3` stores calculations 1, 4, 7 of the
    model, not every third call on each member (which would be every sixth with two members)."""
    backend = MemoryBackend()
    config = ReportsConfig(every=3)
    members = [ReportStore("diamonds", backend, config, renderer=_pages, clock=lambda: T0) for _ in range(2)]
    stored = []
    for number in range(1, 9):
        member, other = members[number % 2], members[(number + 1) % 2]
        if member.due(T0 + number, number):
            entry = member.put(_result(T0 + number), _snapshot(str(number)), number)
            other.learn(entry)  # what the bucket's watch does
            stored.append(number)
    assert stored == [1, 4, 7]
    assert members[0].latest() == members[1].latest()
    assert members[0].latest().summary["calculation"] == 7  # type: ignore[union-attr]
    # a count that restarted (one node restarted: its status starts over) stores at once
    assert members[0].due(T0 + 20, 1)
