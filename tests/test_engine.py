"""Engine results against direct Evidently Reports on exactly the same rows (known answers).

The drift scores here are the legacy mode's (`drift.mode: legacy`: Evidently's own defaults and the
share rule); the tested mode's known answers are in test_engine_tested.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from monitor_service import engine
from monitor_service.config import ModelConfig
from tests.conftest import DIAMONDS, diamonds_model, rows_of
from tests.support.frames import frames

FEATURES = ["carat", "depth", "table", "x", "y", "z", "cut", "color", "clarity"]


def _model(**overrides: Any) -> ModelConfig:
    return ModelConfig.model_validate(diamonds_model(**overrides))


def _legacy(**overrides: Any) -> ModelConfig:
    drift = {"mode": "legacy", **overrides.pop("drift", {})}
    return _model(drift=drift, **overrides)


def _report_scores(snapshot: Any) -> dict[str, tuple[float, float]]:
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            scores[config["column"]] = (float(metric["value"]), float(config["threshold"]))
    return scores


@pytest.mark.parametrize(("split", "count"), [("production", 300), ("production", 2000), ("drifted", 1500)])
def test_engine_scores_equal_direct_evidently_preset(split: str, count: int) -> None:
    model = _legacy()
    reference, current = frames(model, rows_of(split, count))
    result = engine.compute(model, reference, current)
    definition = DataDefinition(numerical_columns=FEATURES[:6], categorical_columns=FEATURES[6:])
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current[FEATURES], data_definition=definition),
        Dataset.from_pandas(reference[FEATURES], data_definition=definition),
    )
    expected = _report_scores(snapshot)
    features = {c.column: c for c in result.columns if c.role == "feature"}
    assert set(features) == set(FEATURES)
    for column, (score, threshold) in expected.items():
        assert features[column].score == score, column
        assert features[column].threshold == threshold, column
    counts = next(
        m["value"] for m in snapshot.dict()["metrics"] if "DriftedColumnsCount" in m["config"]["type"]
    )
    assert result.drifted_columns == counts["count"]
    assert result.drifted_ratio == pytest.approx(counts["share"])


def test_engine_applies_configured_stattests_like_value_drift() -> None:
    drift = {
        "stattest": "psi",
        "per_column": {"carat": {"stattest": "ks", "threshold": 0.01}, "cut": {"threshold": 0.3}},
    }
    model = _legacy(drift=drift)
    reference, current = frames(model, rows_of("drifted", 800))
    result = engine.compute(model, reference, current)
    direct = _report_scores(engine.build_report(model, reference, current))
    by_column = {c.column: c for c in result.columns}
    assert set(by_column) == set(direct) == {*FEATURES, "price", "prediction"}
    for column, (score, threshold) in direct.items():
        assert (by_column[column].score, by_column[column].threshold) == (score, threshold), column
    assert by_column["carat"].stattest == "ks"
    assert by_column["depth"].stattest == "psi"
    assert by_column["cut"].threshold == 0.3


@pytest.mark.parametrize("mode", ["legacy", "tested"])
def test_engine_detects_drift_on_the_shifted_segment_only(mode: str) -> None:
    model = _model(drift={"mode": mode})
    reference, calm = frames(model, rows_of("production", 2000))
    _, shifted = frames(model, rows_of("drifted", 2000))
    assert engine.compute(model, reference, calm).dataset_drift is False
    result = engine.compute(model, reference, shifted)
    assert result.dataset_drift is True
    detected = {c.column for c in result.columns if c.detected}
    assert {"carat", "x", "y", "z", "price", "prediction"} <= detected
    assert "depth" not in detected


@pytest.mark.parametrize("mode", ["legacy", "tested"])
def test_engine_skips_target_drift_without_labels_and_reports_empty_columns(mode: str) -> None:
    model = _model(drift={"mode": mode})
    rows = [{k: v for k, v in r.items() if k != "price"} for r in rows_of("production", 300)]
    for row in rows:
        row["depth"] = None
    reference, current = frames(model, rows)
    result = engine.compute(model, reference, current)
    roles = {(c.column, c.role) for c in result.columns}
    assert ("price", "target") not in roles
    assert [(s.column, s.reason, s.code) for s in result.skipped] == [
        ("depth", "no non-null values in the current window", "no_current_values"),
        ("price", "no_labels", "no_labels"),
    ]
    if mode == "legacy":
        assert result.tested_columns == 8
    else:  # an untestable column counts as drifted and stays in the denominator
        assert (result.tested_columns, result.untestable_columns) == (9, 1)
        assert result.dataset_drift is True


def test_engine_quality_counts_missing_out_of_range_and_new_categories() -> None:
    model = _model()
    rows = rows_of("production", 10)
    rows[0]["carat"] = None
    rows[1]["carat"] = 99.0
    rows[2]["cut"] = "Astonishing"
    reference, current = frames(model, rows)
    quality = {q.column: q for q in engine.compute(model, reference, current).quality}
    assert quality["carat"].missing_current == pytest.approx(0.1)
    assert quality["carat"].missing_reference == 0.0
    assert quality["carat"].out_of_range == pytest.approx(0.1)
    assert quality["cut"].new_category == pytest.approx(0.1)
    assert quality["cut"].out_of_range is None
    assert quality["depth"].missing_current == 0.0


def test_engine_handles_infinities_like_evidently() -> None:
    model = _legacy()
    reference, current = frames(model, rows_of("production", 200))
    current.loc[:50, "carat"] = np.inf
    result = engine.compute(model, reference, current)
    direct = _report_scores(engine.build_report(model, reference, current))
    carat = next(c for c in result.columns if c.column == "carat")
    assert carat.score == direct["carat"][0]


def test_check_stattests_names_the_model_and_column() -> None:
    model = _legacy(drift={"per_column": {"cut": {"stattest": "wasserstein"}, "carat": {"stattest": "nope"}}})
    problems = engine.check_stattests(model, "models[3]")
    assert len(problems) == 2
    unknown = "models[3].drift.per_column.carat.stattest: unknown stat test 'nope'; known: "
    assert problems[0].startswith(unknown) and ", ks, " in problems[0]  # nothing close: the list, once
    assert problems[1] == (
        "models[3].drift.per_column.cut.stattest: stat test 'wasserstein' is for numerical columns, not 'cut'"
    )


def _classification(tmp_path: Any) -> tuple[ModelConfig, pd.DataFrame, pd.DataFrame]:
    """A binary 'expensive' classifier over the diamonds data, with labels, predictions, probabilities."""

    def classify(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "request_id": [f"r-{i}" for i in range(len(frame))],
                "carat": frame["carat"],
                "cut": frame["cut"],
                "expensive": (frame["price"] >= 5000).astype(int),
                "label": (frame["prediction"] >= 5000).astype(int),
                "probability": 1 / (1 + np.exp(-(frame["prediction"] - 5000) / 1500)),
            }
        )

    reference_path = tmp_path / "reference.csv"
    classify(pd.read_csv(DIAMONDS / "reference.csv")).to_csv(reference_path, index=False)
    model = ModelConfig.model_validate(
        {
            "name": "expensive",
            "task": "classification",
            "reference": str(reference_path),
            "columns": {
                "id": "request_id",
                "target": "expensive",
                "prediction": "label",
                "probability": "probability",
                "numerical": ["carat"],
                "categorical": ["cut"],
            },
        }
    )
    current_rows = classify(pd.read_csv(DIAMONDS / "production.csv").head(700)).to_dict(orient="records")
    reference, current = frames(model, current_rows)
    return model, reference, current


def test_engine_classification_quality_equals_direct_computation(tmp_path: Any) -> None:
    model, reference, current = _classification(tmp_path)
    current.loc[600:, "expensive"] = None  # only 600 rows carry a label
    result = engine.compute(model, reference, current)
    assert result.labelled_rows == 600
    labelled = current.head(600)
    truth = labelled["expensive"] == "1"
    predicted = labelled["label"] == "1"
    tp, fp, fn = (truth & predicted).sum(), (~truth & predicted).sum(), (truth & ~predicted).sum()
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    scores = labelled["probability"].to_numpy()
    positives, negatives = scores[truth.to_numpy()], scores[~truth.to_numpy()]
    auc = ((positives[:, None] > negatives).sum() + 0.5 * (positives[:, None] == negatives).sum()) / (
        len(positives) * len(negatives)
    )
    quality = result.model_quality
    assert quality["accuracy"] == pytest.approx((truth == predicted).mean())
    assert quality["precision"] == pytest.approx(precision)
    assert quality["recall"] == pytest.approx(recall)
    assert quality["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert quality["roc_auc"] == pytest.approx(auc)
    roles = {(c.column, c.role) for c in result.columns}
    assert {("label", "prediction"), ("probability", "prediction"), ("expensive", "target")} <= roles


def test_engine_regression_quality_equals_direct_computation() -> None:
    model = _model()
    reference, current = frames(model, rows_of("drifted", 400))
    result = engine.compute(model, reference, current)
    error = current["price"] - current["prediction"]
    quality = result.model_quality
    assert result.labelled_rows == 400
    assert quality["mae"] == pytest.approx(error.abs().mean())
    assert quality["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
    assert quality["mape"] == pytest.approx(100 * (error.abs() / current["price"]).mean())
    assert quality["r2"] == pytest.approx(
        1 - (error**2).sum() / ((current["price"] - current["price"].mean()) ** 2).sum()
    )


def test_engine_single_class_labels_give_every_defined_metric_and_keep_drift(tmp_path: Any) -> None:
    model, reference, current = _classification(tmp_path)
    current["expensive"] = "0"  # every labelled row is of one class: the negative one
    result = engine.compute(model, reference, current)
    predicted_positive = (current["label"] == "1").to_numpy()
    assert predicted_positive.any()
    # accuracy and precision are defined (precision is 0: every positive prediction is wrong), F1
    # too (0); recall has no positive label to find, ROC AUC no pair to order.
    assert result.model_quality == pytest.approx(
        {"accuracy": 1 - predicted_positive.mean(), "precision": 0.0, "f1": 0.0}
    )
    detail = result.model_quality_detail
    assert detail is not None
    assert {(s.metric, s.reason) for s in detail.skipped} == {
        ("recall", "no_positive_labels"),
        ("roc_auc", "single_class"),
    }
    assert result.labelled_rows == len(current)
    assert {c.column for c in result.columns if c.role == "feature"} == {"carat", "cut"}
