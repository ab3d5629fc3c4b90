"""Label-arrival bias: when labels come back faster for some predictions, target drift on the
labelled rows would report a shift of who got labelled. Detected, said, and not reported as drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitor_service import engine
from monitor_service.config import ModelConfig, MonitorConfig
from monitor_service.engine.label_bias import label_bias
from tests.conftest import diamonds_model, rows_of
from tests.quality_support import binary_frame, binary_model, records
from tests.support.collected import registry_with
from tests.support.frames import frames


def _classifier(tmp_path: Path) -> tuple[dict[str, object], ModelConfig]:
    reference = tmp_path / "reference.csv"
    binary_frame("reference").to_csv(reference, index=False)
    mapping = binary_model(reference, quality={"min_labelled_rows_target_drift": 200})
    return mapping, ModelConfig.model_validate(mapping)


def _window(share_positive: float, share_negative: float, seed: int = 0) -> pd.DataFrame:
    """5,000 production rows; labels kept for a share of the rows predicted expensive and another
    share of the others."""
    window = pd.concat([binary_frame("production")] * 2, ignore_index=True)
    window["request_id"] = [f"r-{i}" for i in range(len(window))]
    keep = np.random.default_rng(seed).random(len(window)) < np.where(
        window["predicted"] == 1, share_positive, share_negative
    )
    window["expensive"] = window["expensive"].astype(object).where(keep, None)
    return window


def test_labels_that_come_back_faster_for_one_class_are_detected_and_target_drift_is_not_reported(
    tmp_path: Path,
) -> None:
    mapping, model = _classifier(tmp_path)
    ref, current = frames(model, records(_window(0.6, 0.3)))
    result = engine.compute(model, ref, current)
    bias = result.label_bias
    assert bias is not None and bias.detected
    assert bias.pvalue < 1e-6
    shares = {g.group: g.labelled / g.rows for g in bias.groups}
    assert abs(shares["1"] - 0.6) < 0.05 and abs(shares["0"] - 0.3) < 0.05
    assert bias.difference > 0.2
    assert ("expensive", "label_arrival_bias") in {(s.column, s.reason) for s in result.skipped}
    assert "expensive" not in {c.column for c in result.columns}
    registry = registry_with(MonitorConfig.model_validate({"models": [mapping]}), result)
    assert registry.get_sample_value("drift_monitor_label_arrival_bias", {"model": "expensive"}) == 1.0
    share = registry.get_sample_value("drift_monitor_labelled_ratio", {"model": "expensive", "group": "1"})
    assert share == shares["1"]


def test_labels_that_come_back_evenly_are_no_bias_and_target_drift_is_tested(tmp_path: Path) -> None:
    _, model = _classifier(tmp_path)
    ref, current = frames(model, records(_window(0.45, 0.45)))
    result = engine.compute(model, ref, current)
    assert result.label_bias is not None and not result.label_bias.detected
    assert "expensive" in {c.column for c in result.columns if c.role == "target"}


def test_a_small_difference_is_not_bias_even_when_significant(tmp_path: Path) -> None:
    """With many rows a 5-point difference is significant, but below label_bias_min_difference."""
    _, model = _classifier(tmp_path)
    _, current = frames(model, records(_window(0.5, 0.45)))
    bias = label_bias(model, ["0", "1"], current, alpha=0.01, min_difference=0.1)
    assert bias is not None and not bias.detected
    assert bias.difference < 0.1


def test_regression_groups_rows_by_prediction_quintile() -> None:
    model = ModelConfig.model_validate(diamonds_model())
    rows = rows_of("production", 2000)
    order = np.argsort([r["prediction"] for r in rows])
    for rank, index in enumerate(order):
        if rank < 1600 and rank % 2:  # the cheaper 80 %: every other label; the dearest 20 %: all
            del rows[index]["price"]
    _, current = frames(model, rows)
    bias = label_bias(model, [], current, alpha=0.01, min_difference=0.1)
    assert bias is not None and bias.detected
    assert [g.group for g in bias.groups] == ["q1", "q2", "q3", "q4", "q5"]
    assert bias.groups[-1].labelled == bias.groups[-1].rows


def test_every_row_labelled_or_none_is_no_bias(tmp_path: Path) -> None:
    _, model = _classifier(tmp_path)
    _, current = frames(model, records(_window(1.0, 1.0)))
    bias = label_bias(model, ["0", "1"], current, alpha=0.01, min_difference=0.1)
    assert bias is not None and not bias.detected and bias.pvalue == 1.0
    _, unlabelled = frames(model, records(_window(0.0, 0.0)))
    assert label_bias(model, ["0", "1"], unlabelled, alpha=0.01, min_difference=0.1) is None
