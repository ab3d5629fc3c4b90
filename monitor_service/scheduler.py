"""Periodic calculations: one task per model, every `schedule.every`, once `min_rows` are in the window."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from monitor_service.monitor import Monitor
from monitor_service.runtime import ModelRuntime

log = logging.getLogger(__name__)


class Scheduler:
    """Starts and stops the per-model calculation loops."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for runtime in self.monitor.runtimes.values():
            self._tasks.append(asyncio.create_task(self._loop(runtime), name=f"schedule-{runtime.name}"))
        if self.monitor.config.storage.data_dir is not None:
            self._tasks.append(asyncio.create_task(self._maintain_logs(), name="storage"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _loop(self, runtime: ModelRuntime) -> None:
        next_run = time.monotonic() + runtime.config.schedule.every
        while True:
            await asyncio.sleep(max(0.0, next_run - time.monotonic()))
            # Fixed-rate schedule; a calculation longer than `every` skips the missed slots. The
            # period is read each time, so a reloaded config applies from the next slot.
            every = runtime.config.schedule.every
            next_run += every * max(1, int((time.monotonic() - next_run) // every) + 1)
            if runtime.window.evict_expired(time.time()) < runtime.config.schedule.min_rows:
                continue
            try:
                await self.monitor.calculate(runtime.name)
            except asyncio.CancelledError:
                raise
            except Exception:  # already logged with its traceback and counted by Monitor
                log.debug("scheduled calculation of %s failed", runtime.name)

    async def _maintain_logs(self) -> None:
        """fsync the logs every `fsync_interval` (interval policy) and compact those grown too large."""
        storage = self.monitor.config.storage
        while True:
            await asyncio.sleep(storage.fsync_interval)
            for runtime in self.monitor.runtimes.values():
                if runtime.log is None:
                    continue
                try:
                    if runtime.log.broken:  # try a fresh segment (the disk may have space again)
                        runtime.log.open_new_segment()
                    if runtime.log.dirty:
                        await asyncio.to_thread(runtime.log.sync)
                    if runtime.log.size >= storage.compact_bytes:
                        await self.monitor.compact(runtime.name)
                except Exception:  # this loop keeps the logs durable: it must outlive any failure
                    log.exception("storage maintenance of model %s failed", runtime.name)
