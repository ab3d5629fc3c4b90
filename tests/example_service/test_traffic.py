"""Traffic scenarios: which rows each one sends and which labels it posts."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from example_model_service.models import FEATURES
from example_model_service.traffic import (
    CONCEPT_DRIFT_PRICE_FACTOR,
    UNSEEN_CATEGORIES,
    Progress,
    batches,
    build_plan,
    label_of,
)


def _split(carat: float, price: float, count: int) -> pd.DataFrame:
    row = {"carat": carat, "cut": "Ideal", "color": "E", "clarity": "VS1", "depth": 61.0, "table": 56.0}
    frame = pd.DataFrame([{**row, "x": 4.0, "y": 4.0, "z": 2.5, "price": price}] * count)
    frame.insert(0, "request_id", [f"r-{i}" for i in range(count)])
    return frame.assign(prediction=price)


PRODUCTION = _split(0.5, 1000.0, 7)
DRIFTED = _split(2.0, 9000.0, 5)


def test_build_plan_no_drift_cycles_production_rows() -> None:
    plan = build_plan("no_drift", 20, PRODUCTION, DRIFTED)
    assert len(plan.rows) == 20
    assert {row["carat"] for row in plan.rows} == {0.5}
    assert set(plan.rows[0]) == set(FEATURES)
    assert plan.prices == [1000.0] * 20


def test_build_plan_sudden_drift_switches_halfway() -> None:
    plan = build_plan("sudden_drift", 10, PRODUCTION, DRIFTED)
    assert [row["carat"] for row in plan.rows] == [0.5] * 5 + [2.0] * 5
    assert plan.prices == [1000.0] * 5 + [9000.0] * 5


def test_build_plan_gradual_drift_mixes_in_a_growing_share() -> None:
    plan = build_plan("gradual_drift", 1000, PRODUCTION, DRIFTED, seed=1)
    drifted = np.array([row["carat"] == 2.0 for row in plan.rows])
    assert drifted[:200].mean() < 0.2 < 0.8 < drifted[-200:].mean()
    assert plan.prices == [9000.0 if d else 1000.0 for d in drifted]
    assert build_plan("gradual_drift", 1000, PRODUCTION, DRIFTED, seed=1) == plan


def test_build_plan_concept_drift_changes_labels_not_inputs() -> None:
    plan = build_plan("concept_drift", 10, PRODUCTION, DRIFTED)
    assert plan.rows == build_plan("no_drift", 10, PRODUCTION, DRIFTED).rows
    assert plan.prices == [1000.0 * CONCEPT_DRIFT_PRICE_FACTOR] * 10


def test_build_plan_bad_data_adds_missing_values_and_unseen_categories() -> None:
    plan = build_plan("bad_data", 2000, PRODUCTION, DRIFTED, seed=3)
    missing = sum(value is None for row in plan.rows for value in row.values())
    unseen = sum(row[c] == v for row in plan.rows for c, v in UNSEEN_CATEGORIES.items())
    assert 100 < missing < 300
    assert 50 < unseen < 150
    assert build_plan("bad_data", 2000, PRODUCTION, DRIFTED, seed=3) == plan


def test_build_plan_rejects_an_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build_plan("chaos", 10, PRODUCTION, DRIFTED)


def test_label_of_gives_price_or_expensive() -> None:
    assert label_of("regression", 1234.567) == 1234.57
    assert label_of("classification", 4999.99) == 0
    assert label_of("classification", 5000.0) == 1
    assert label_of("price_band", 999.99) == "budget"
    assert label_of("price_band", 1000.0) == "mid"
    assert label_of("price_band", 9999.0) == "premium"
    assert label_of("price_band", 18000.0) == "luxury"


def test_batches_cover_every_row_once() -> None:
    assert list(batches(7, 3)) == [(0, 3), (3, 6), (6, 7)]


def test_progress_draws_one_line_with_carriage_returns() -> None:
    stream = io.StringIO()
    progress = Progress(10, "no_drift", stream=stream)
    progress.update(5, 0, 0, force=True)
    progress.finish(10, 1, 20)
    text = stream.getvalue()
    assert text.startswith("\rno_drift [") and text.endswith("\n")
    assert "10/10 rows" in text and "errors 1" in text and "labels 20" in text
