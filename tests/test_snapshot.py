"""The stored snapshot: Evidently's report plus the test suite, with the verdict as metadata."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from evidently.core.report import Snapshot

from monitor_service.config import ModelConfig
from monitor_service.engine.snapshot import build_snapshot, snapshot_json_html
from monitor_service.results import TestOutcome
from tests.conftest import diamonds_model, rows_of
from tests.support.reports import calculation, frames


@pytest.mark.parametrize(
    ("mode", "drift_metric"), [("tested", "ValueDrift"), ("legacy", "DriftedColumnsCount")]
)
def test_snapshot_carries_the_verdict_the_tests_and_the_calculation_time(
    mode: str, drift_metric: str
) -> None:
    model = ModelConfig.model_validate(diamonds_model(drift={"mode": mode}))
    result, text = calculation(model, rows_of("drifted", 700), 1_764_450_000.5)
    data = json.loads(text)
    assert data["timestamp"].startswith("2025-11-29T21:00:00.5")
    assert data["metadata"]["dataset_drift"] == "drift"
    assert data["metadata"]["drifted_columns"] == f"{result.drifted_columns} of {result.tested_columns}"
    assert "drift" in data["tags"] and "drift-monitor" in data["tags"]
    snapshot = Snapshot.loads(text)
    metric_types = {m["config"]["type"].rsplit(":", 1)[1] for m in snapshot.dict()["metrics"]}
    assert {drift_metric, "ValueDrift", "MissingValueCount", "RowCount"} <= metric_types
    assert data["metadata"]["drift_mode"] == mode
    titles = [w["title"] for w in data["widgets"]]
    # tested mode: the calculation's own verdict on top, as Evidently widgets stored with the report
    assert (titles[0] == "Drift verdict of model diamonds") == (mode == "tested"), titles[:3]
    if mode == "tested":
        assert result.classifier is not None
        assert data["metadata"]["domain_classifier_auc"] == f"{result.classifier.auc:.3f}"
    names = {t.description.split(": ")[0] for t in snapshot.tests_results}
    assert {t.name for t in result.tests if t.status != "skip"} == names
    assert "drawDashboard" in snapshot_json_html(text).html


def test_snapshot_tags_failed_and_critical_tests() -> None:
    model = ModelConfig.model_validate(diamonds_model())
    reference, current = frames(model, rows_of("production", 300))
    failed = TestOutcome("duplicates", "duplicates", None, "fail", True, 9.0, "many")
    from monitor_service import engine

    result = replace(engine.compute(model, reference, current), tests=(failed,))
    data = json.loads(build_snapshot(model, reference, current, result))
    assert {"no-drift", "tests-failed", "critical-test-failed"} <= set(data["tags"])
    assert data["metadata"]["failed_tests"] == "duplicates"
