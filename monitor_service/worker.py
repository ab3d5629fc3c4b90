"""The calculation worker: runs the engine off the event loop, in a spawned process (default) or a
thread.

A worker process keeps Evidently's pandas/scipy work from holding the server's GIL, so ingestion
stays fast on a 2-core machine while a calculation runs (bench/ measures it). It is started with
`spawn` (forking a process that runs threads is unsafe), imports Evidently when the settings are
checked at start, and is replaced when it dies. References cross the process boundary once per
version: the worker process keeps the last one of each model (see `_WorkerReferences`); a thread
worker shares memory with the server and is given the reference every time.
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
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.process_memory import trim_memory
from monitor_service.results import CalculationResult

ExecutorKind = Literal["process", "thread"]
Job = Literal["compute", "snapshot"]


class NeedReference(Exception):
    """The worker process does not hold this version of the model's reference: send it along."""


class _WorkerReferences:
    """Inside a worker process: the last reference of each model, with its version. It lives and
    dies with that process; a thread worker never uses it."""

    held: ClassVar[dict[str, tuple[str, pd.DataFrame]]] = {}

    @classmethod
    def get(cls, model: str, version: str, sent: pd.DataFrame | None) -> pd.DataFrame:
        if sent is not None:
            cls.held[model] = (version, sent)
        entry = cls.held.get(model)
        if entry is None or entry[0] != version:
            raise NeedReference(model)
        return entry[1]


def _run_job(
    job: Job,
    model: ModelConfig,
    version: str,
    reference: pd.DataFrame | None,
    columns: dict[str, np.ndarray],
    cached: bool,
    result: CalculationResult | None = None,
) -> Any:
    """In the worker; its frames are freed on return, then the heap is trimmed."""
    try:
        return _calculate(job, model, version, reference, columns, cached, result)
    finally:
        trim_memory()


def _calculate(
    job: Job,
    model: ModelConfig,
    version: str,
    reference: pd.DataFrame | None,
    columns: dict[str, np.ndarray],
    cached: bool,
    result: CalculationResult | None,
) -> Any:
    """Build the current frame in the worker and call the engine."""
    from monitor_service import engine
    from monitor_service.engine.snapshot import build_snapshot

    if cached:
        reference = _WorkerReferences.get(model.name, version, reference)
    assert reference is not None
    current = pd.DataFrame(columns)
    if job == "compute":
        return engine.compute(model, reference, current)
    assert result is not None
    return build_snapshot(model, reference, current, result)


def _check_settings(models: list[ModelConfig]) -> list[str]:
    from monitor_service import engine

    try:
        return engine.check_settings(models)
    finally:
        trim_memory()  # what importing Evidently allocated and dropped


def _noop() -> None:
    """Sent after each job: multiprocessing's queue feeder thread keeps the last call it pickled
    (the whole window, 130 MB at 1M rows x 20 columns) referenced until it sends another."""


def _release_sent_call(executor: Executor) -> None:
    """Queue a no-op behind the job just submitted, so the feeder drops the job's bytes once it
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


class CalculationWorker:
    """One worker; at most one job runs at a time. Jobs are submitted from the event loop."""

    def __init__(self, kind: ExecutorKind = "process") -> None:
        self.kind = kind
        self._executor: Executor | None = None
        self._sent: dict[str, str] = {}  # model -> reference version the worker process holds

    def _make(self) -> Executor:
        if self.kind == "thread":
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-calc")
        self._sent.clear()  # a new worker process holds no reference yet
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
        try:
            future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
            if self.kind == "process":
                _release_sent_call(executor)
            return await future
        except BrokenProcessPool:
            # The worker died (killed, out of memory): replace it for the next job, unless another
            # caller that saw the same failure already did.
            if self._executor is executor:
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            raise

    def pids(self) -> list[int]:
        """PIDs of the worker processes now running (none with a thread worker or before start)."""
        executor = self._executor
        if not isinstance(executor, ProcessPoolExecutor):
            return []
        # No public accessor: the pool keeps its processes in a private {pid: Process} dict, which
        # its management thread may change; dict.copy() is atomic under the GIL.
        processes = getattr(executor, "_processes", None) or {}
        return [int(pid) for pid in processes.copy()]

    async def check_settings(self, models: list[ModelConfig]) -> list[str]:
        """Start the worker, import Evidently in it, and return stat-test problems of the config."""
        problems: list[str] = await self._submit(_check_settings, models)
        return problems

    async def compute(
        self, model: ModelConfig, version: str, reference: pd.DataFrame, columns: dict[str, np.ndarray]
    ) -> CalculationResult:
        result: CalculationResult = await self._job("compute", model, version, reference, columns)
        return result

    async def snapshot(
        self,
        model: ModelConfig,
        version: str,
        reference: pd.DataFrame,
        columns: dict[str, np.ndarray],
        result: CalculationResult,
    ) -> str:
        """Evidently's snapshot JSON of a calculation (its report and test suite), to be stored."""
        text: str = await self._job("snapshot", model, version, reference, columns, result)
        return text

    async def _job(
        self,
        job: Job,
        model: ModelConfig,
        version: str,
        reference: pd.DataFrame,
        columns: dict[str, np.ndarray],
        result: CalculationResult | None = None,
    ) -> Any:
        if self.kind == "thread":
            return await self._submit(_run_job, job, model, version, reference, columns, False, result)
        try:
            if self._sent.get(model.name) == version:  # the worker holds it: do not pickle it again
                try:
                    return await self._submit(_run_job, job, model, version, None, columns, True, result)
                except NeedReference:
                    pass
            outcome = await self._submit(_run_job, job, model, version, reference, columns, True, result)
            self._sent[model.name] = version
            return outcome
        finally:
            trim_memory()  # the server's side: the pickled window it sent

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
