from __future__ import annotations

import asyncio

import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.reference import load_reference
from monitor_service.schema import RowSchema, validate_rows
from monitor_service.worker import CalculationWorker
from tests.conftest import diamonds_model, rows_of

MODEL = ModelConfig.model_validate(diamonds_model())
SCHEMA = RowSchema.from_model(MODEL)
REFERENCE = load_reference(MODEL, SCHEMA, "models[0].reference")
COLUMNS = validate_rows(rows_of("drifted", 500), SCHEMA, 1.0).columns


def test_worker_sends_a_reference_version_to_the_worker_process_once() -> None:
    async def scenario() -> tuple[int, int, int]:
        worker = CalculationWorker("process")
        try:
            first = await worker.compute(MODEL, "v7", REFERENCE, COLUMNS)
            # Same version: the worker keeps using the reference it holds, whatever is passed now.
            second = await worker.compute(MODEL, "v7", REFERENCE.head(50), COLUMNS)
            # A new version is sent and used.
            third = await worker.compute(MODEL, "v8", REFERENCE.head(50), COLUMNS)
        finally:
            worker.close()
        return first.reference_rows, second.reference_rows, third.reference_rows

    assert asyncio.run(scenario()) == (10_000, 10_000, 50)


def test_worker_resends_the_reference_to_a_new_worker() -> None:
    async def scenario() -> int:
        worker = CalculationWorker("process")
        try:
            await worker.compute(MODEL, "v11", REFERENCE.head(80), COLUMNS)
            worker.close()  # the next call starts a fresh worker that holds nothing
            return (await worker.compute(MODEL, "v11", REFERENCE.head(80), COLUMNS)).reference_rows
        finally:
            worker.close()

    assert asyncio.run(scenario()) == 80


def test_worker_builds_the_current_frame_in_the_worker() -> None:
    async def scenario() -> int:
        worker = CalculationWorker("thread")
        try:
            return (await worker.compute(MODEL, "v12", REFERENCE, COLUMNS)).current_rows
        finally:
            worker.close()

    assert asyncio.run(scenario()) == len(pd.DataFrame(COLUMNS)) == 500
