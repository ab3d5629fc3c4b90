"""Model quality through engine.compute: nothing silent, minimum evidence, intervals, baseline,
multiclass, and what reaches /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn import metrics as skm

from monitor_service import engine
from monitor_service.config import ModelConfig, MonitorConfig
from monitor_service.model_quality.changes import quality_changes
from monitor_service.model_quality.spec import REASONS
from monitor_service.results import CalculationResult, ModelQualityResult
from tests.conftest import diamonds_model, rows_of
from tests.quality_support import binary_frame, binary_model, cut_frame, multiclass_model, records
from tests.support.collected import registry_with
from tests.support.frames import frames


def _detail(result: CalculationResult) -> ModelQualityResult:
    assert result.model_quality_detail is not None
    return result.model_quality_detail


def _registry(config: MonitorConfig, result: CalculationResult) -> CollectorRegistry:
    return registry_with(config, result)


def _config(models: list[dict[str, Any]]) -> MonitorConfig:
    return MonitorConfig.model_validate({"models": models})


def test_boolean_target_with_default_positive_label_is_measured(tmp_path: Path) -> None:
    """The issue's silent case: TRUE/FALSE in the reference CSV, true/false live, positive_label
    left at its default "1": quality is computed, with "true" as the positive class."""
    reference = tmp_path / "reference.csv"
    binary_frame("reference", boolean=True).to_csv(reference, index=False)
    assert "TRUE" in reference.read_text() or "True" in reference.read_text()
    model = ModelConfig.model_validate(binary_model(reference))
    window = binary_frame("production", boolean=True).head(1000)
    ref, current = frames(model, records(window))
    result = engine.compute(model, ref, current)
    truth, predicted = window["expensive"].to_numpy(), window["predicted"].to_numpy()
    assert result.model_quality == pytest.approx(
        {
            "accuracy": skm.accuracy_score(truth, predicted),
            "precision": skm.precision_score(truth, predicted),
            "recall": skm.recall_score(truth, predicted),
            "f1": skm.f1_score(truth, predicted),
            "roc_auc": skm.roc_auc_score(truth, window["probability"]),
        }
    )
    detail = _detail(result)
    assert detail.kind == "binary"
    assert detail.skipped == ()
    assert {c.label for c in detail.class_recall} == {"false", "true"}
    assert {b.metric for b in detail.baseline} == set(result.model_quality)


def test_too_few_labels_give_insufficient_labels_not_numbers(config: MonitorConfig) -> None:
    model = config.models[0]
    rows = rows_of("production", 2000)
    for row in rows[50:]:
        del row["price"]  # 50 labelled rows of 2,000
    ref, current = frames(model, rows)
    result = engine.compute(model, ref, current)
    detail = _detail(result)
    assert result.model_quality == {}
    assert result.labelled_rows == 50
    assert {(s.metric, s.reason) for s in detail.skipped} == {
        (m, "insufficient_labels") for m in ("mae", "rmse", "mape", "r2")
    }
    assert [(s.column, s.reason) for s in result.skipped] == [("price", "insufficient_labels")]
    registry = _registry(config, result)
    for metric in ("mae", "rmse", "mape", "r2"):
        labels = {"model": "diamonds", "metric": metric}
        assert registry.get_sample_value("drift_monitor_model_quality", labels) is None
        skipped = {**labels, "reason": "insufficient_labels"}
        assert registry.get_sample_value("drift_monitor_model_quality_skipped", skipped) == 1.0
        # the baseline is there: the reference has labels and predictions
        assert registry.get_sample_value("drift_monitor_model_quality_baseline", labels) is not None
    assert registry.get_sample_value("drift_monitor_labelled_rows", {"model": "diamonds"}) == 50


@pytest.mark.parametrize("labels", [1, 5, 20])
def test_target_drift_waits_for_enough_labels(config: MonitorConfig, labels: int) -> None:
    """1-20 labels of a window without drift used to report target drift every time."""
    model = config.models[0]
    rows = rows_of("production", 2000)
    for row in rows[labels:]:
        del row["price"]
    ref, current = frames(model, rows)
    result = engine.compute(model, ref, current)
    assert "price" not in {c.column for c in result.columns}
    assert ("price", "insufficient_labels") in {(s.column, s.reason) for s in result.skipped}


def test_target_drift_is_tested_from_the_minimum_on() -> None:
    model = ModelConfig.model_validate(diamonds_model(quality={"min_labelled_rows_target_drift": 300}))
    rows = rows_of("production", 1000)
    for row in rows[300:]:
        del row["price"]
    ref, current = frames(model, rows)
    result = engine.compute(model, ref, current)
    assert "price" in {c.column for c in result.columns if c.role == "target"}


def test_every_result_metric_and_skip_reaches_metrics_with_its_interval(config: MonitorConfig) -> None:
    model = config.models[0]
    rows = rows_of("production", 800)
    for row in rows[:300]:
        row["price"] = 0.0  # MAPE cannot divide by these: left out and counted
    ref, current = frames(model, rows)
    result = engine.compute(model, ref, current)
    detail = _detail(result)
    assert detail.mape_zero_targets == 300
    registry = _registry(config, result)
    for value in detail.metrics:
        labels = {"model": "diamonds", "metric": value.metric}
        assert registry.get_sample_value("drift_monitor_model_quality", labels) == value.value
        assert registry.get_sample_value("drift_monitor_model_quality_lower", labels) == value.lower
        assert registry.get_sample_value("drift_monitor_model_quality_upper", labels) == value.upper
        assert registry.get_sample_value("drift_monitor_model_quality_rows", labels) == value.rows
        assert value.lower < value.value < value.upper
    mape = detail.value("mape")
    assert mape is not None and mape.rows == 500
    prices, predictions = current["price"].to_numpy()[300:], current["prediction"].to_numpy()[300:]
    assert mape.value == pytest.approx(100 * np.mean(np.abs(prices - predictions) / prices))
    zero = registry.get_sample_value("drift_monitor_model_quality_mape_zero_targets", {"model": "diamonds"})
    assert zero == 300


def test_skip_reasons_are_a_fixed_vocabulary_without_data_values(tmp_path: Path) -> None:
    """A window with labels outside the reference's classes: nothing of them shows in a reason."""
    reference = tmp_path / "reference.csv"
    binary_frame("reference").to_csv(reference, index=False)
    model = ModelConfig.model_validate(binary_model(reference, quality={"min_labelled_rows": 10}))
    window = binary_frame("production").head(300)
    window["expensive"] = "secret-label-42"
    ref, current = frames(model, records(window))
    detail = _detail(engine.compute(model, ref, current))
    reasons = [s.reason for s in (*detail.skipped, *detail.class_recall_skipped)]
    assert reasons and set(reasons) <= set(REASONS)
    assert "secret" not in repr(detail)
    assert detail.value("accuracy") is not None  # every label is outside the classes: all wrong
    assert detail.value("accuracy").value == 0.0  # type: ignore[union-attr]


def test_configured_baseline_wins_over_the_reference(config: MonitorConfig) -> None:
    model = ModelConfig.model_validate(diamonds_model(quality={"baseline": {"mae": 500.0}}))
    ref, current = frames(model, rows_of("production", 300))
    detail = _detail(engine.compute(model, ref, current))
    baselines = {b.metric: (b.value, b.source) for b in detail.baseline}
    assert baselines["mae"] == (500.0, "config")
    error = ref["price"] - ref["prediction"]
    assert baselines["rmse"] == (pytest.approx(float(np.sqrt((error**2).mean()))), "reference")
    assert config.models[0].quality.baseline == {}


def test_reference_without_labels_has_no_baseline_and_says_so(tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    pd.read_csv(Path(diamonds_model()["reference"])).drop(columns=["price"]).to_csv(reference, index=False)
    model = ModelConfig.model_validate(diamonds_model(reference=str(reference)))
    ref, current = frames(model, rows_of("production", 300))
    result = engine.compute(model, ref, current)
    detail = _detail(result)
    assert detail.baseline == ()
    assert {(s.metric, s.reason) for s in detail.baseline_skipped} == {
        (m, "no_reference_labels") for m in ("mae", "rmse", "mape", "r2")
    }
    assert set(result.model_quality) == {"mae", "rmse", "mape", "r2"}  # realised quality still there


def test_multiclass_quality_through_the_engine_and_collector(tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    cut_frame("reference").to_csv(reference, index=False)
    model_dict = multiclass_model(reference)
    model = ModelConfig.model_validate(model_dict)
    window = cut_frame("production").head(1500)
    ref, current = frames(model, records(window))
    result = engine.compute(model, ref, current)
    detail = _detail(result)
    assert detail.kind == "multiclass"
    truth, predicted = window["cut"], window["predicted_cut"]
    assert result.model_quality["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert result.model_quality["f1_weighted"] == pytest.approx(
        skm.f1_score(truth, predicted, average="weighted", zero_division=0)
    )
    assert set(result.model_quality) == {
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
    }
    # classes from the reference; "Fair" is never predicted by the rule: its recall is 0
    recall = {c.label: c for c in detail.class_recall}
    assert set(recall) == {"Fair", "Good", "Ideal", "Premium", "Very Good"}
    assert recall["Fair"].value == 0.0 and recall["Fair"].upper > 0
    for metric in detail.metrics:
        assert metric.lower <= metric.value <= metric.upper
        assert metric.method == ("wilson" if metric.metric == "accuracy" else "bootstrap")
    registry = _registry(_config([model_dict]), result)
    for c in detail.class_recall:
        labels = {"model": "cut", "class": c.label}
        assert registry.get_sample_value("drift_monitor_model_class_recall", labels) == c.value
        assert registry.get_sample_value("drift_monitor_model_class_recall_lower", labels) == c.lower


def test_multiclass_with_more_classes_than_max_classes_skips_per_class_recall(tmp_path: Path) -> None:
    reference = tmp_path / "reference.csv"
    cut_frame("reference").to_csv(reference, index=False)
    model = ModelConfig.model_validate(multiclass_model(reference, quality={"max_classes": 3}))
    ref, current = frames(model, records(cut_frame("production").head(500)))
    detail = _detail(engine.compute(model, ref, current))
    assert detail.class_recall == ()
    assert ("class_recall", "too_many_classes") in {(s.metric, s.reason) for s in detail.skipped}
    assert detail.value("accuracy") is not None


def test_quality_changes_are_reported_once_per_change(config: MonitorConfig) -> None:
    model = config.models[0]
    few = rows_of("production", 300)
    for row in few[20:]:
        del row["price"]
    ref, current_few = frames(model, few)
    first = engine.compute(model, ref, current_few)
    _, current_many = frames(model, rows_of("production", 300))
    enough = engine.compute(model, ref, current_many)
    previous: CalculationResult | None = None
    messages = []
    for result in (first, first, first, enough):  # as ModelState.calculate logs them
        messages += [message for _, message in quality_changes(previous, result)]
        previous = result
    skipped = [m for m in messages if "mae not computed: insufficient_labels" in m]
    assert len(skipped) == 1, messages
    assert sum("mae computed again" in m for m in messages) == 1, messages


def test_a_reference_that_no_longer_fits_skips_quality_with_a_reason(tmp_path: Path) -> None:
    """E.g. replaced through the API with other classes: quality says why instead of vanishing."""
    reference = tmp_path / "reference.csv"
    binary_frame("reference").to_csv(reference, index=False)
    model = ModelConfig.model_validate(
        binary_model(reference, columns={**binary_model(reference)["columns"], "positive_label": "1"})
    )
    ref, current = frames(model, records(binary_frame("production").head(300)))
    other = ref.assign(
        expensive=np.where(ref["expensive"] == "1", "pricey", "cheap"),
        predicted=np.where(ref["predicted"] == "1", "pricey", "cheap"),
    )
    detail = _detail(engine.compute(model, other, current))
    assert detail.metrics == ()
    assert {s.reason for s in detail.skipped} == {"reference_mismatch"}
