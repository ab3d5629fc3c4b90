"""ModelState: the one owner of a model's window, labels, reference and status."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pandas as pd
import pytest

from monitor_service.config import ModelConfig
from monitor_service.errors import LabelsNotConfigured, RateLimited, ValidationFailed, WindowEmpty
from monitor_service.journal import MemoryJournal
from monitor_service.journal.local import LocalJournal
from monitor_service.model_state import ModelState, RequestBody
from monitor_service.ratelimit import RowRateLimiter
from monitor_service.reference import load_reference
from monitor_service.schema import RowSchema
from monitor_service.worker import CalculationWorker
from tests.conftest import diamonds_model, rows_of

MODEL = ModelConfig.model_validate(diamonds_model())
SCHEMA = RowSchema.from_model(MODEL)
REFERENCE = load_reference(MODEL, SCHEMA, "models[0].reference")


def _state(journal: object | None = None, limiter: RowRateLimiter | None = None) -> ModelState:
    return ModelState(MODEL, SCHEMA, REFERENCE, journal or MemoryJournal(), limiter)  # type: ignore[arg-type]


def _unlabelled(count: int, start: int = 0) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "price"} for r in rows_of("production", count, start)]


def test_model_state_joins_labels_now_and_when_rows_arrive_later() -> None:
    state = _state()

    async def scenario() -> tuple[int, int]:
        await state.ingest(_unlabelled(5))
        outcome = await state.add_labels([{"id": "d-1", "target": 10.0}, {"id": "d-7", "target": 70.0}])
        assert (outcome.matched, outcome.pending) == (1, 1)
        await state.ingest(_unlabelled(5, start=5))
        return state.stats(time.time()).labels_matched, state.stats(time.time()).labels_pending

    assert asyncio.run(scenario()) == (2, 0)
    prices = pd.DataFrame(state.window_rows(time.time()).columns).set_index("request_id")["price"]
    assert prices["d-1"] == 10.0 and prices["d-7"] == 70.0


def test_model_state_refuses_a_bad_batch_whole() -> None:
    state = _state()
    rows = _unlabelled(3)
    rows[2]["carat"] = "heavy"
    with pytest.raises(ValidationFailed):
        asyncio.run(state.ingest(rows))
    assert state.stats(time.time()).window_rows == 0


def test_model_state_rate_limit_counts_labels_as_well_as_rows() -> None:
    state = _state(limiter=RowRateLimiter(rate=1.0, burst=5))
    asyncio.run(state.ingest(_unlabelled(4)))
    with pytest.raises(RateLimited):
        asyncio.run(state.add_labels([{"id": "d-1", "target": 1.0}, {"id": "d-2", "target": 2.0}]))


def test_model_state_labels_need_id_and_target_columns() -> None:
    model = ModelConfig.model_validate(
        diamonds_model(columns={**diamonds_model()["columns"], "target": None})
    )
    state = ModelState(model, RowSchema.from_model(model), REFERENCE, MemoryJournal())
    with pytest.raises(LabelsNotConfigured):
        asyncio.run(state.add_labels([{"id": "d-1", "target": 1.0}]))


def test_model_state_recovers_the_window_from_its_journal(tmp_path: Path) -> None:
    def journal() -> LocalJournal:
        return LocalJournal(tmp_path / "m", fsync_every_record=False, compact_bytes=1 << 30)

    first = _state(journal())
    first.recover()
    rows = _unlabelled(3)
    asyncio.run(first.ingest(rows, RequestBody(json.dumps({"rows": rows}).encode())))
    first.journal.close()  # no checkpoint: everything is replayed from the log
    second = _state(journal())
    second.recover()
    assert second.window_rows(time.time()).columns["request_id"].tolist() == ["d-0", "d-1", "d-2"]
    assert second.stats(time.time()).replayed_records == 1


def test_model_state_calculation_of_an_empty_window_is_refused() -> None:
    with pytest.raises(WindowEmpty):
        asyncio.run(_state().calculate(CalculationWorker("thread")))


def test_model_state_calculates_and_publishes_its_status() -> None:
    state = _state()
    worker = CalculationWorker("thread")

    async def scenario() -> None:
        await state.ingest(_unlabelled(200))
        await state.calculate(worker)

    try:
        asyncio.run(scenario())
    finally:
        worker.close()
    status = state.stats(time.time()).status
    assert status.status == "ok" and status.calculations == 1
    assert status.latest is not None and status.latest.current_rows == 200


def test_model_state_new_reference_is_used_by_the_next_calculation() -> None:
    state = _state()
    worker = CalculationWorker("thread")

    async def scenario() -> int:
        await state.ingest(_unlabelled(100))
        await state.replace_reference(REFERENCE.head(500))
        return (await state.calculate(worker)).result.reference_rows

    try:
        assert asyncio.run(scenario()) == 500
    finally:
        worker.close()


def test_model_state_stats_are_a_frozen_view() -> None:
    state = _state()
    before = state.stats(time.time())
    asyncio.run(state.ingest(_unlabelled(7)))
    assert before.window_rows == 0
    assert state.stats(time.time()).window_rows == 7
    with pytest.raises(AttributeError):
        before.window_rows = 3  # type: ignore[misc]


def test_model_state_confirms_drift_only_after_its_window_turned_over() -> None:
    """The confirmed drift state (confirmation.py) advances with each published result: with
    `confirm: 2` and the turnover rule, a second calculation on the same rows cannot confirm; one on
    fresh rows does. A reloaded config keeps the state."""
    model = ModelConfig.model_validate(
        diamonds_model(window={"max_rows": 200}, drift={"confirm": 2, "clear": 2})
    )
    state = ModelState(model, RowSchema.from_model(model), REFERENCE, MemoryJournal())
    worker = CalculationWorker("thread")
    drifted = [{k: v for k, v in r.items() if k != "price"} for r in rows_of("drifted", 400)]

    async def scenario() -> list[tuple[bool | None, bool | None]]:
        seen = []
        await state.ingest(drifted[:200])
        for rows in (None, drifted[200:]):  # the same rows again, then a full turnover
            first = (await state.calculate(worker)).result
            assert first.window_first_arrival is not None and first.window_last_arrival is not None
            seen.append((first.dataset_drift, state.confirmation.dataset.confirmed))
            if rows is not None:
                await state.ingest(rows)
        seen.append(
            ((await state.calculate(worker)).result.dataset_drift, state.confirmation.dataset.confirmed)
        )
        await state.apply_config(model.model_copy(update={"moving_reference": False}), None)
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        worker.close()
    assert seen == [(True, False), (True, False), (True, True)]
    stats = state.stats(time.time())
    assert stats.confirmation.dataset.confirmed and stats.confirmation.calculations == 3
    assert stats.confirmation.summary()["dataset_drift_confirmed"] is True
