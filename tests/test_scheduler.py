"""The scheduler calculates each model on its period once it holds min_rows, and keeps journals synced."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from monitor_service.config import load_config
from monitor_service.journal import Record
from monitor_service.journal.local import LocalJournal
from monitor_service.scheduler import Scheduler
from monitor_service.service import MonitorService
from tests.conftest import diamonds_model, rows_of, write_config


def _service(tmp_path: Path, min_rows: int) -> MonitorService:
    model = diamonds_model(schedule={"every": "0.2s", "min_rows": min_rows})
    path = write_config(tmp_path / "c.yaml", [model])
    path.write_text(path.read_text() + "storage:\n  data_dir: data\n  fsync_interval: 50ms\n")
    return MonitorService.build(load_config(path, environ={}))


async def _run(service: MonitorService, rows: int, until: float) -> None:
    await service.start()
    scheduler = Scheduler(service)
    scheduler.start()
    try:
        if rows:
            await service.models["diamonds"].ingest(rows_of("production", rows), None)
        deadline = time.monotonic() + until
        while time.monotonic() < deadline and service.models["diamonds"].status.calculations < 2:
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
        await service.shutdown()


def test_scheduler_calculates_on_the_period_once_min_rows_are_in(tmp_path: Path) -> None:
    service = _service(tmp_path, min_rows=20)
    asyncio.run(_run(service, rows=30, until=60))
    status = service.models["diamonds"].status
    assert status.calculations >= 2 and status.errors == 0


def test_scheduler_waits_for_min_rows(tmp_path: Path) -> None:
    service = _service(tmp_path, min_rows=50)
    asyncio.run(_run(service, rows=10, until=1.0))  # five periods pass
    assert service.models["diamonds"].status.calculations == 0


def test_scheduler_storage_loop_syncs_the_log(tmp_path: Path) -> None:
    service = _service(tmp_path, min_rows=5_000)  # no rows arrive: nothing to calculate

    async def scenario() -> bool:
        await service.start()
        scheduler = Scheduler(service)
        scheduler.start()
        try:
            state = service.models["diamonds"]
            journal = state.journal
            assert isinstance(journal, LocalJournal)
            journal.write(Record("rows", 1.0, False, b"{}"))
            deadline = time.monotonic() + 10
            while journal._dirty and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return not journal._dirty
        finally:
            await scheduler.stop()
            await service.shutdown()

    assert asyncio.run(scenario())
