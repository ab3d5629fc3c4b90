"""engine.compute on awkward windows and references: it finishes, the result is self-consistent, and
the collector exports exactly what the JSON result says (an undefined value is absent, not NaN).
Every case runs in both drift modes (`mode` fixture) unless it is about one of them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor_service import engine
from monitor_service.config import ModelConfig, MonitorConfig
from monitor_service.results import UNTESTABLE_REASONS, CalculationResult
from tests.conftest import DIAMONDS, diamonds_model, rows_of
from tests.support.collected import registry_with
from tests.support.frames import frames

NUMERICAL = ["carat", "depth", "table", "x", "y", "z"]
CATEGORICAL = ["cut", "color", "clarity"]
FEATURES = NUMERICAL + CATEGORICAL


@pytest.fixture(params=["legacy", "tested"])
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


# Edge cases of the computation itself: quality and target drift on any number of labels (the
# minimum evidence they need by default is tested in tests/test_quality_engine.py).
ANY_LABELS = {"min_labelled_rows": 1, "min_labelled_rows_target_drift": 1}


def _model(mode: str = "tested", **overrides: Any) -> ModelConfig:
    drift = {"mode": mode, **overrides.pop("drift", {})}
    return ModelConfig.model_validate(diamonds_model(drift=drift, **{"quality": ANY_LABELS, **overrides}))


def _small_reference(tmp_path: Path, rows: int = 300) -> str:
    """A short reference: Evidently picks K-S / chi-square for it, and slow tests stay fast."""
    path = tmp_path / "reference.csv"
    pd.read_csv(DIAMONDS / "reference.csv").head(rows).to_csv(path, index=False)
    return str(path)


def _collected(config: MonitorConfig, result: CalculationResult) -> CollectorRegistry:
    """The registry as the server builds it, after `result` was published."""
    return registry_with(config, result)


def _agrees(expected: Any, sample: float | None) -> bool:
    """The exported sample equals the JSON value; a JSON null (undefined) is no sample at all."""
    if expected is None:
        return sample is None
    return sample is not None and sample == pytest.approx(float(expected))


def _assert_consistent(result: CalculationResult, config: MonitorConfig, current_rows: int) -> None:
    """The result agrees with itself, with its JSON form and with what the collector exports."""
    as_json = result.as_dict()
    tested = {c.column for c in result.columns}
    skipped = {s.column for s in result.skipped}
    assert result.current_rows == current_rows
    assert not tested & {s.column for s in result.skipped if s.role != "target"}
    features = [c for c in result.columns if c.role == "feature"]
    assert {c.column for c in features} | (skipped & set(FEATURES)) == set(FEATURES)
    if result.mode == "legacy":
        assert result.tested_columns == len(features)
        assert result.drifted_columns == sum(c.detected for c in features)
        if features:
            assert result.dataset_drift == (result.drifted_columns / len(features) >= result.drift_share)
        else:
            assert result.dataset_drift is None
    else:
        _assert_tested(result)
    for column in result.columns:
        assert math.isfinite(column.score), f"{column.column}: undefined score reported as a test result"
        assert math.isfinite(column.threshold)
    for quality in result.quality:
        for value in (
            quality.missing_current,
            quality.missing_reference,
            quality.out_of_range,
            quality.new_category,
        ):
            assert value is None or 0.0 <= value <= 1.0, quality
    for name, value in result.model_quality.items():
        assert math.isfinite(value), f"model quality {name} is {value}: undefined values are left out"

    get = _collected(config, result).get_sample_value
    model = {"model": result.model}
    assert _agrees(as_json["dataset_drift"], get("drift_monitor_dataset_drift", model))
    if result.mode == "tested":
        _assert_tested_exported(result, get)
    assert get("drift_monitor_dataset_rows", {**model, "dataset": "current"}) == current_rows
    if features:
        assert get("drift_monitor_drifted_columns", model) == result.drifted_columns
        assert get("drift_monitor_drifted_columns_ratio", model) == pytest.approx(result.drifted_ratio)
    for column in as_json["columns"]:
        labels = {**model, "column": column["column"], "role": column["role"]}
        score = get("drift_monitor_column_drift_score", {**labels, "stattest": column["stattest"]})
        assert _agrees(column["score"], score), column
        assert get("drift_monitor_column_drift_detected", labels) == float(column["detected"])
    for skip in result.skipped:
        if skip.column not in tested:
            labels = {**model, "column": skip.column, "role": skip.role}
            assert get("drift_monitor_column_drift_detected", labels) is None
    for quality in as_json["quality"]:
        column = {**model, "column": quality["column"]}
        assert _agrees(
            quality["missing_current"],
            get("drift_monitor_column_missing_values_ratio", {**column, "dataset": "current"}),
        )
        assert _agrees(quality["out_of_range"], get("drift_monitor_column_out_of_range_ratio", column))
        assert _agrees(quality["new_category"], get("drift_monitor_column_new_category_ratio", column))
    for name, value in as_json["model_quality"].items():
        assert _agrees(value, get("drift_monitor_model_quality", {**model, "metric": name})), name
    detail = as_json["model_quality_detail"]
    for item in detail["metrics"] if detail else []:
        labels = {**model, "metric": item["metric"]}
        assert _agrees(item["lower"], get("drift_monitor_model_quality_lower", labels)), item
        assert _agrees(item["upper"], get("drift_monitor_model_quality_upper", labels)), item
        assert item["lower"] <= item["value"] <= item["upper"], item
    for skip in detail["skipped"] if detail else []:
        labels = {**model, "metric": skip["metric"], "reason": skip["reason"]}
        assert get("drift_monitor_model_quality_skipped", labels) == 1.0, skip
        assert get("drift_monitor_model_quality", {**model, "metric": skip["metric"]}) is None


def _assert_tested(result: CalculationResult) -> None:
    """Tested mode: untestable feature columns count as drifted and never leave the denominator."""
    features = [c for c in result.columns if c.role == "feature"]
    untestable = [s for s in result.skipped if s.role == "feature"]
    assert all(s.code in UNTESTABLE_REASONS for s in untestable), untestable
    assert result.tested_columns == len(FEATURES)
    assert result.untestable_columns == len(untestable)
    assert result.drifted_columns == sum(c.detected for c in features) + len(untestable)
    classifier = bool(result.classifier and result.classifier.detected)
    assert result.dataset_drift == (result.drifted_columns > 0 or classifier)
    assert result.alpha is not None
    for c in result.columns:
        assert c.p_value is not None and c.corrected_p_value is not None and c.effect_size is not None
        assert 0.0 <= c.p_value <= c.corrected_p_value <= 1.0, c
        assert math.isfinite(c.effect_size) and c.effect_size >= 0.0, c
        significant = c.corrected_p_value <= result.alpha
        assert c.distribution_detected == (significant and c.effect_size >= (c.min_effect or 0.0))
        missing = bool(c.missing and c.missing.detected)
        assert c.detected == (c.distribution_detected or missing)
    if result.classifier is not None:
        assert 0.0 <= result.classifier.auc <= 1.0
        assert 0.0 <= result.classifier.p_value <= 1.0


def _assert_tested_exported(result: CalculationResult, get: Any) -> None:
    model = {"model": result.model}
    assert get("drift_monitor_untestable_columns", model) == result.untestable_columns
    for c in result.columns:
        labels = {**model, "column": c.column, "role": c.role, "signal": "distribution"}
        assert get("drift_monitor_column_drift_p_value", labels) == pytest.approx(c.p_value)
        assert get("drift_monitor_column_drift_corrected_p_value", labels) == pytest.approx(
            c.corrected_p_value
        )
        effect = get("drift_monitor_column_drift_effect_size", {**labels, "measure": c.effect})
        assert effect == pytest.approx(c.effect_size)
    for s in result.skipped:
        if s.code in UNTESTABLE_REASONS:
            labels = {**model, "column": s.column, "role": s.role, "reason": s.code}
            assert get("drift_monitor_column_untestable", labels) == 1.0
    if result.classifier is not None:
        assert get("drift_monitor_domain_classifier_auc", model) == pytest.approx(result.classifier.auc)


def _quality(result: CalculationResult) -> dict[str, Any]:
    return {q.column: q for q in result.quality}


def test_engine_constant_columns_are_tested_and_identical_constants_do_not_drift(
    config: MonitorConfig, tmp_path: Path, mode: str
) -> None:
    constant = {"carat": 1.0, "depth": 60.0, "table": 55.0, "cut": "Ideal", "color": "E"}
    rows = [{**r, **constant} for r in rows_of("production", 200)]
    model = _model(mode)
    reference, current = frames(model, rows)
    result = engine.compute(model, reference, current)
    assert {c.column for c in result.columns if c.role == "feature"} == set(FEATURES)
    _assert_consistent(result, config, 200)
    # The same constants in the reference: nothing to see.
    path = tmp_path / "constant.csv"
    pd.read_csv(DIAMONDS / "reference.csv").head(500).assign(**constant).to_csv(path, index=False)
    same = _model(mode, reference=str(path))
    reference, current = frames(same, rows)
    result = engine.compute(same, reference, current)
    drift = {c.column: c for c in result.columns}
    assert not any(drift[name].detected for name in constant), {n: drift[n] for n in constant}
    assert all(_quality(result)[name].missing_current == 0.0 for name in constant)
    assert _quality(result)["carat"].out_of_range == 0.0
    assert _quality(result)["cut"].new_category == 0.0
    _assert_consistent(result, config, 200)


def test_engine_skips_a_current_column_that_is_all_null(config: MonitorConfig, mode: str) -> None:
    rows = [{**r, "carat": None, "cut": None} for r in rows_of("production", 150)]
    model = _model(mode)
    reference, current = frames(model, rows)
    result = engine.compute(model, reference, current)
    reasons = {s.column: (s.reason, s.code) for s in result.skipped}
    empty = ("no non-null values in the current window", "no_current_values")
    assert reasons == {"carat": empty, "cut": empty}
    if mode == "legacy":
        assert result.tested_columns == len(FEATURES) - 2
    else:
        assert (result.tested_columns, result.untestable_columns) == (len(FEATURES), 2)
        assert result.dataset_drift is True
    assert _quality(result)["carat"].missing_current == 1.0
    assert _quality(result)["cut"].missing_current == 1.0
    assert _quality(result)["carat"].out_of_range == 0.0
    _assert_consistent(result, config, 150)


def test_engine_single_category_in_the_window(config: MonitorConfig, mode: str) -> None:
    rows = [{**r, "cut": "Ideal", "color": "E", "clarity": "SI1"} for r in rows_of("production", 150)]
    model = _model(mode)
    reference, current = frames(model, rows)
    result = engine.compute(model, reference, current)
    drift = {c.column: c for c in result.columns}
    assert {"cut", "color", "clarity"} <= set(drift)
    assert all(_quality(result)[name].new_category == 0.0 for name in CATEGORICAL)
    _assert_consistent(result, config, 150)


def test_engine_categories_unseen_in_the_reference(config: MonitorConfig, mode: str) -> None:
    rows = rows_of("production", 150)
    for i, row in enumerate(rows):
        row["cut"] = "Astonishing"
        row["color"] = "Z" if i % 2 else row["color"]
    model = _model(mode)
    reference, current = frames(model, rows)
    result = engine.compute(model, reference, current)
    drift = {c.column: c for c in result.columns}
    assert drift["cut"].detected
    assert _quality(result)["cut"].new_category == 1.0
    assert _quality(result)["color"].new_category == pytest.approx(0.5, abs=0.01)
    _assert_consistent(result, config, 150)


@pytest.mark.parametrize("reference_rows", [300, 10_000], ids=["ks-chisquare", "wasserstein-jensenshannon"])
def test_engine_tiny_window_of_two_rows(
    config: MonitorConfig, tmp_path: Path, reference_rows: int, mode: str
) -> None:
    reference_path = _small_reference(tmp_path, reference_rows) if reference_rows < 10_000 else None
    model = _model(mode, **({"reference": reference_path} if reference_path else {}))
    reference, current = frames(model, rows_of("production", 2))
    result = engine.compute(model, reference, current)
    assert {c.column for c in result.columns} == {*FEATURES, "price", "prediction"}
    assert result.labelled_rows == 2
    # R² of two rows has a value but no interval (most resamples repeat one row): no number then.
    assert set(result.model_quality) == {"mae", "rmse", "mape"}
    assert result.model_quality_detail is not None
    assert [(s.metric, s.reason) for s in result.model_quality_detail.skipped] == [
        ("r2", "insufficient_labels")
    ]
    _assert_consistent(result, config, 2)


@pytest.mark.parametrize("reference_rows", [300, 10_000], ids=["ks-chisquare", "wasserstein-jensenshannon"])
def test_engine_window_of_one_row(
    config: MonitorConfig, tmp_path: Path, reference_rows: int, mode: str
) -> None:
    """Every column is tested; R² of a single sample is undefined and left out (JSON null and a NaN
    gauge disagree today), MAE and the others are published."""
    reference_path = _small_reference(tmp_path, reference_rows) if reference_rows < 10_000 else None
    model = _model(mode, **({"reference": reference_path} if reference_path else {}))
    reference, current = frames(model, rows_of("production", 1))
    result = engine.compute(model, reference, current)
    assert {c.column for c in result.columns} == {*FEATURES, "price", "prediction"}
    assert result.labelled_rows == 1
    assert result.model_quality["mae"] == pytest.approx(abs(current["price"][0] - current["prediction"][0]))
    assert "r2" not in result.model_quality
    _assert_consistent(result, config, 1)


@pytest.mark.parametrize("stattest", ["ks", "psi", "anderson", "cramer_von_mises", "empirical_mmd", "es"])
def test_engine_window_of_one_row_with_configured_stattests(
    config: MonitorConfig, tmp_path: Path, stattest: str
) -> None:
    """A stat test that cannot work on one row (it raises, or gives no p-value) skips its column with
    the reason, like an empty column; the other columns are still published."""
    model = _model(
        "legacy",
        reference=_small_reference(tmp_path),
        drift={"per_column": {name: {"stattest": stattest} for name in NUMERICAL}},
        metrics=["data_drift", "target_drift", "prediction_drift", "data_quality"],
    )
    reference, current = frames(model, rows_of("production", 1))
    result = engine.compute(model, reference, current)
    tested = {c.column for c in result.columns}
    assert {*CATEGORICAL, "price", "prediction"} <= tested
    assert tested | {s.column for s in result.skipped} >= set(FEATURES)
    _assert_consistent(result, config, 1)


@pytest.mark.parametrize(
    "test", ["ks", "ks_2samp", "anderson", "cramer_von_mises", "empirical_mmd", "es", "mannw", "t_test"]
)
def test_engine_window_of_one_row_with_configured_tests_in_tested_mode(
    config: MonitorConfig, tmp_path: Path, test: str
) -> None:
    """Tested mode, any Evidently p-value test per column: one that cannot work on one row makes its
    column untestable (test_failed, counted as drifted); the others are still published."""
    model = _model(
        "tested",
        reference=_small_reference(tmp_path),
        drift={"per_column": {name: {"test": test} for name in NUMERICAL}},
        metrics=["data_drift", "target_drift", "prediction_drift", "data_quality"],
    )
    assert engine.check_config(model, "models[0]") == []
    reference, current = frames(model, rows_of("production", 1))
    result = engine.compute(model, reference, current)
    tested = {c.column for c in result.columns}
    assert {*CATEGORICAL, "price", "prediction"} <= tested
    assert all(c.stattest == test for c in result.columns if c.column in NUMERICAL)
    assert all(s.code == "test_failed" for s in result.skipped)
    _assert_consistent(result, config, 1)


def test_engine_skips_a_reference_column_that_is_all_nan(config: MonitorConfig, mode: str) -> None:
    model = _model(mode)
    reference, current = frames(model, rows_of("production", 150))
    reference = reference.assign(carat=np.nan, cut=None)
    result = engine.compute(model, reference, current)
    reasons = {s.column: (s.reason, s.code) for s in result.skipped}
    empty = ("no non-null values in the reference", "no_reference_values")
    assert reasons == {"carat": empty, "cut": empty}
    assert _quality(result)["carat"].missing_reference == 1.0
    assert _quality(result)["cut"].missing_reference == 1.0
    _assert_consistent(result, config, 150)


def test_engine_keeps_drift_when_every_labelled_target_is_zero(config: MonitorConfig, mode: str) -> None:
    """MAPE divides by the target: with only zero targets it is undefined. Evidently then raises an
    IndexError; the drift results must not be lost with it (the other quality metrics are defined)."""
    rows = [{**r, "price": 0.0} for r in rows_of("production", 100)]
    model = _model(mode)
    reference, current = frames(model, rows)
    result = engine.compute(model, reference, current)
    assert {c.column for c in result.columns if c.role == "feature"} == set(FEATURES)
    assert result.labelled_rows == 100
    assert "mape" not in result.model_quality
    if result.model_quality:
        assert result.model_quality["mae"] == pytest.approx(current["prediction"].abs().mean())
    else:
        assert any(s.column == "price" and s.role == "target" for s in result.skipped)
    _assert_consistent(result, config, 100)


@pytest.mark.parametrize(
    ("column", "stattest"),
    [("cut", "g_test"), ("cut", "fisher_exact")],
    ids=["g_test-raises-on-any-window", "fisher_exact-on-more-than-two-categories"],
)
def test_engine_a_stattest_that_raises_skips_only_its_column(
    config: MonitorConfig, column: str, stattest: str
) -> None:
    """Legacy mode: the config check accepts these tests for a categorical column; on this data
    Evidently raises. One column's failure must not cost every other column its result."""
    model = _model("legacy", drift={"per_column": {column: {"stattest": stattest}}})
    assert engine.check_stattests(model, "models[0]") == []
    reference, current = frames(model, rows_of("production", 300))
    result = engine.compute(model, reference, current)
    assert column in {s.column for s in result.skipped}
    assert {c.column for c in result.columns if c.role == "feature"} == set(FEATURES) - {column}
    _assert_consistent(result, config, 300)


def test_engine_tested_mode_refuses_g_test_and_counts_a_failing_test(config: MonitorConfig) -> None:
    """g_test raises unless both samples have the same size: refused by the config check in tested
    mode. fisher_exact on more than two categories raises at run time: the column is untestable
    (test_failed) and counts as drifted."""
    refused = _model("tested", drift={"per_column": {"cut": {"test": "g_test"}}})
    problems = engine.check_config(refused, "models[0]")
    assert len(problems) == 1 and problems[0].startswith(
        "models[0].drift.per_column.cut.test: g_test is refused"
    )
    model = _model("tested", drift={"per_column": {"cut": {"test": "fisher_exact"}}})
    assert engine.check_config(model, "models[0]") == []
    reference, current = frames(model, rows_of("production", 300))
    result = engine.compute(model, reference, current)
    assert [(s.column, s.code) for s in result.skipped] == [("cut", "test_failed")]
    assert result.dataset_drift is True
    _assert_consistent(result, config, 300)
