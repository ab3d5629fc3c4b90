"""When things run: a calculation loop per model (every `schedule.every`, once `min_rows` are in the
window) and the storage loop that lets each journal look after itself every `fsync_interval`. In
cluster mode, the member's loops instead: schedule ticks published as tasks, and tasks worked on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from monitor_service.model_state import ModelState
from monitor_service.service import MonitorService

log = logging.getLogger(__name__)


class Scheduler:
    """Starts and stops the periodic tasks."""

    def __init__(self, service: MonitorService) -> None:
        self.service = service
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        member = self.service.member
        if member is not None:  # cluster mode: ticks for the cluster, and tasks from it
            self._tasks.append(asyncio.create_task(member.publish_ticks(), name="cluster-ticks"))
            self._tasks.append(asyncio.create_task(member.work(), name="cluster-work"))
        else:
            for state in self.service.models.values():
                self._tasks.append(
                    asyncio.create_task(self._calculations(state), name=f"schedule-{state.name}")
                )
        if self.service.config.storage.data_dir is not None:
            self._tasks.append(asyncio.create_task(self._storage(), name="storage"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _calculations(self, state: ModelState) -> None:
        next_run = time.monotonic() + state.config.schedule.every
        while True:
            await asyncio.sleep(max(0.0, next_run - time.monotonic()))
            # Fixed-rate schedule; a calculation longer than `every` skips the missed slots. The
            # period is read each time, so a reloaded config applies from the next slot.
            every = state.config.schedule.every
            next_run += every * max(1, int((time.monotonic() - next_run) // every) + 1)
            if not state.rows_due(time.time()):
                continue
            try:
                await self.service.calculate(state.name)
            except asyncio.CancelledError:
                raise
            except Exception:  # already logged with its traceback and counted by the model's state
                log.debug("scheduled calculation of %s failed", state.name)

    async def _storage(self) -> None:
        interval = self.service.config.storage.fsync_interval
        while True:
            await asyncio.sleep(interval)
            for state in self.service.models.values():
                await state.maintain_storage()
