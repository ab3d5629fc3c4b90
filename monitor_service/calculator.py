"""Runs engine calculations off the event loop, in a worker process (default) or a thread.

A worker process keeps Evidently's pandas/scipy work from holding the server's GIL, so ingestion
stays fast on a 2-core machine while a calculation runs (see bench/ for the measurement). The
worker is started with `spawn` (forking a process that runs threads is unsafe) and is warmed up at
start so the first calculation does not pay Evidently's import. A worker that dies is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

import numpy as np
import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.process_memory import trim_memory
from monitor_service.results import CalculationResult

ExecutorKind = Literal["process", "thread"]
Task = Literal["compute", "report"]


# Worker side: the last reference each model sent, so it crosses the process boundary once.
_REFERENCES: dict[str, tuple[int, pd.DataFrame]] = {}


class NeedReference(Exception):
    """The worker does not hold this version of the model's reference: send it along."""


def _run(
    task: Task,
    model: ModelConfig,
    version: int,
    reference: pd.DataFrame | None,
    columns: dict[str, np.ndarray],
) -> Any:
    """Runs in the worker; its frames are freed on return, then the heap is trimmed."""
    try:
        return _calculate(task, model, version, reference, columns)
    finally:
        trim_memory()


def _calculate(
    task: Task,
    model: ModelConfig,
    version: int,
    reference: pd.DataFrame | None,
    columns: dict[str, np.ndarray],
) -> Any:
    """Build the current frame in the worker and call the engine."""
    from monitor_service import engine

    if reference is not None:
        _REFERENCES[model.name] = (version, reference)
    cached = _REFERENCES.get(model.name)
    if cached is None or cached[0] != version:
        raise NeedReference(model.name)
    current = pd.DataFrame(columns)
    if task == "compute":
        return engine.compute(model, cached[1], current)
    return engine.report_html(model, cached[1], current)


def _warm_up(models: list[ModelConfig]) -> list[str]:
    from monitor_service import engine

    try:
        return engine.warm_up(models)
    finally:
        trim_memory()  # what importing Evidently allocated and dropped


def _noop() -> None:
    """Sent after each call: multiprocessing's queue feeder thread keeps the last call it pickled
    (the whole window, 130 MB at 1M rows x 20 columns) referenced until it sends another."""


def _release_sent_call(executor: Executor) -> None:
    """Queue a no-op behind the call just submitted, so the feeder drops the call's bytes once it
    has written them to the worker instead of holding them until the next calculation."""
    with contextlib.suppress(RuntimeError):  # shut down or broken (BrokenProcessPool): nothing held
        executor.submit(_noop)


def _watch_parent(parent: int) -> None:
    """Worker initializer: exit when the server process is gone (even after SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Calculator:
    """Submits calculations to one worker; at most one runs at a time."""

    def __init__(self, kind: ExecutorKind = "process") -> None:
        self.kind = kind
        self._executor: Executor | None = None
        self._sent: dict[str, int] = {}

    def _make(self) -> Executor:
        if self.kind == "thread":
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-calc")
        self._sent.clear()  # a new worker holds no reference yet
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_watch_parent,
            initargs=(os.getpid(),),
        )

    async def _submit(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            self._executor = self._make()
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(executor, fn, *args)
            if self.kind == "process":
                _release_sent_call(executor)
            return await future
        except BrokenProcessPool:
            # The worker died (killed, out of memory): replace it for the next calculation, unless
            # another caller that saw the same failure already did.
            if self._executor is executor:
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            raise

    async def warm_up(self, models: list[ModelConfig]) -> list[str]:
        """Start the worker, import Evidently in it, and return stat-test problems of the config."""
        problems: list[str] = await self._submit(_warm_up, models)
        return problems

    async def compute(
        self, model: ModelConfig, version: int, reference: pd.DataFrame, columns: dict[str, np.ndarray]
    ) -> CalculationResult:
        result: CalculationResult = await self._run("compute", model, version, reference, columns)
        return result

    async def report_html(
        self, model: ModelConfig, version: int, reference: pd.DataFrame, columns: dict[str, np.ndarray]
    ) -> str:
        html: str = await self._run("report", model, version, reference, columns)
        return html

    async def _run(
        self,
        task: Task,
        model: ModelConfig,
        version: int,
        reference: pd.DataFrame,
        columns: dict[str, np.ndarray],
    ) -> Any:
        """Send the reference only when the worker does not hold this version of it yet."""
        try:
            if self._sent.get(model.name) == version:
                try:
                    return await self._submit(_run, task, model, version, None, columns)
                except NeedReference:
                    pass
            outcome = await self._submit(_run, task, model, version, reference, columns)
            self._sent[model.name] = version
            return outcome
        finally:
            if self.kind == "process":  # the server's side (the thread executor trims in _run)
                trim_memory()

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes now running (none with the thread executor or before start)."""
        executor = self._executor
        if not isinstance(executor, ProcessPoolExecutor):
            return []
        # No public accessor: the pool keeps its processes in a private {pid: Process} dict, which
        # its management thread may change; dict.copy() is atomic under the GIL.
        processes = getattr(executor, "_processes", None) or {}
        return list(processes.copy())

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
