"""Runs engine calculations off the event loop, in a worker process (default) or a thread.

A worker process keeps Evidently's pandas/scipy work from holding the server's GIL, so ingestion
stays fast on a 2-core machine while a calculation runs (see bench/ for the measurement). The
worker is started with `spawn` (forking a process that runs threads is unsafe) and is warmed up at
start so the first calculation does not pay Evidently's import. A worker that dies is replaced.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.results import CalculationResult

ExecutorKind = Literal["process", "thread"]


def _compute(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> CalculationResult:
    from monitor_service import engine

    return engine.compute(model, reference, current)


def _report_html(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> str:
    from monitor_service import engine

    return engine.report_html(model, reference, current)


def _warm_up(models: list[ModelConfig]) -> list[str]:
    from monitor_service import engine

    return engine.warm_up(models)


class Calculator:
    """Submits calculations to one worker; at most one runs at a time."""

    def __init__(self, kind: ExecutorKind = "process") -> None:
        self.kind = kind
        self._executor: Executor | None = None

    def _make(self) -> Executor:
        if self.kind == "thread":
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-calc")
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    async def _submit(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            self._executor = self._make()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except BrokenProcessPool:
            # The worker died (killed, out of memory): replace it for the next calculation.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            raise

    async def warm_up(self, models: list[ModelConfig]) -> list[str]:
        """Start the worker, import Evidently in it, and return stat-test problems of the config."""
        problems: list[str] = await self._submit(_warm_up, models)
        return problems

    async def compute(
        self, model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame
    ) -> CalculationResult:
        result: CalculationResult = await self._submit(_compute, model, reference, current)
        return result

    async def report_html(self, model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> str:
        html: str = await self._submit(_report_html, model, reference, current)
        return html

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
