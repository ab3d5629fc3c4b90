"""The stored report of one calculation: Evidently's snapshot JSON, and its HTML page on request.

The snapshot is `engine.report.build_report` (the drift and quality panels with the monitor's own
verdict; in tested mode with the verdict widgets of engine/verdict.py on top) joined with an
Evidently report of the test suite (engine/tests_suite.py stated as Evidently metrics with tests),
so Evidently's report page and Evidently UI show both. Its metadata and tags carry the
calculation's verdict, which Evidently UI lists and filters on.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot, metric_tests_stats, metric_tests_widget
from evidently.core.serialization import SnapshotModel
from evidently.metrics import (
    CategoryCount,
    DuplicatedRowCount,
    MaxValue,
    MissingValueCount,
    OutListValueCount,
    OutRangeValueCount,
    RowCount,
)
from evidently.tests.numerical_tests import (
    GreaterOrEqualMetricTest,
    GreaterThanMetricTest,
    LessOrEqualMetricTest,
    LessThanMetricTest,
)

from monitor_service.config import ModelConfig
from monitor_service.engine.report import build_report, snapshot_html, with_verdict
from monitor_service.engine.tests_suite import Check, plan_tests, tested_columns, tests_frame
from monitor_service.engine.verdict import outcome_of
from monitor_service.results import CalculationResult, ReportPage

TAG = "drift-monitor"
log = logging.getLogger(__name__)


def build_snapshot(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, result: CalculationResult
) -> str:
    """Evidently's snapshot JSON of the calculation `result` (of this window and reference)."""
    if result.mode == "tested":  # the report of the calculation's own verdict, not a new one
        outcome = outcome_of(result)
        report = with_verdict(build_report(model, reference, current, outcome), model, outcome)
    else:
        report = build_report(model, reference, current)
    main = report.to_snapshot_model()
    checks = [c for c in plan_tests(model, reference, current) if c.skip is None]
    metric_results = dict(main.metric_results)
    top_level = list(main.top_level_metrics)
    widgets = list(main.widgets)
    extra: dict[str, str] = {}
    if checks:
        try:
            tests = _tests_report(model, checks, reference, current).to_snapshot_model()
        except Exception as exc:  # Evidently refuses some data; the drift report is still worth keeping
            log.warning("model %s: the test suite could not be added to the report: %s", model.name, exc)
            extra["tests_in_report"] = f"left out: {type(exc).__name__}: {exc}"[:500]
        else:
            metric_results.update(tests.metric_results)
            top_level += tests.top_level_metrics
            widgets += tests.widgets
    at = datetime.fromtimestamp(result.finished_at, UTC)
    merged = SnapshotModel(
        report=main.report,
        name=f"{model.name} {at.isoformat(timespec='seconds')}",
        timestamp=at.replace(tzinfo=None),  # Evidently's own timestamps are naive
        metadata={**main.metadata, **verdict_metadata(result), **extra},
        tags=verdict_tags(result),
        metric_results=metric_results,
        top_level_metrics=top_level,
        widgets=widgets,
        tests_widgets=[],
    )
    tests_results = Snapshot.load_model(merged).tests_results
    if tests_results:
        merged.tests_widgets = [metric_tests_stats(tests_results), metric_tests_widget(tests_results)]
    text: str = Snapshot.load_model(merged).dumps()
    return text


def snapshot_json_html(text: str) -> ReportPage:
    """The page of a stored snapshot (rendered by engine.report, escaped like every report page)."""
    return snapshot_html(load_snapshot(text))


def load_snapshot(text: str) -> Any:
    """An Evidently Snapshot from its JSON."""
    return Snapshot.load_dict(json.loads(text))


def verdict_metadata(result: CalculationResult) -> dict[str, str]:
    """The calculation's verdict as Evidently snapshot metadata (strings: Evidently UI filters on them)."""
    verdict = {True: "drift", False: "no drift", None: "not tested"}[result.dataset_drift]
    failed = result.failed_tests
    out = {
        "model": result.model,
        "drift_mode": result.mode,
        "dataset_drift": verdict,
        "drifted_columns": f"{result.drifted_columns} of {result.tested_columns}",
        "current_rows": str(result.current_rows),
        "failed_tests": ", ".join(t.name for t in failed) or "none",
        "calculated_at": datetime.fromtimestamp(result.finished_at, UTC).isoformat(timespec="milliseconds"),
    }
    if result.classifier is not None:
        out["domain_classifier_auc"] = f"{result.classifier.auc:.3f}"
    return out


def verdict_tags(result: CalculationResult) -> list[str]:
    tags = [TAG, {True: "drift", False: "no-drift", None: "not-tested"}[result.dataset_drift]]
    if result.failed_tests:
        tags.append("tests-failed")
    if any(t.critical for t in result.failed_tests):
        tags.append("critical-test-failed")
    return tags


def _tests_report(
    model: ModelConfig, checks: list[Check], reference: pd.DataFrame, current: pd.DataFrame
) -> Any:
    columns = tested_columns(model)
    definition = DataDefinition(
        numerical_columns=[name for name, numerical in columns if numerical],
        categorical_columns=[name for name, numerical in columns if not numerical],
    )
    cur = tests_frame(model, current)
    metrics = [_metric(check, cur) for check in checks]
    return Report(metrics).run(
        Dataset.from_pandas(cur.reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(tests_frame(model, reference).reset_index(drop=True), data_definition=definition),
    )


def _metric(check: Check, cur: pd.DataFrame) -> Any:
    """The check as an Evidently metric whose test has the same verdict (failures of non-critical
    tests are Evidently warnings)."""
    options = {"alias": check.name, "is_critical": check.critical}
    bounds: list[Any] = []
    if check.low is not None and check.statistic != "distinct":
        bounds.append(GreaterOrEqualMetricTest(threshold=check.low, **options))
    if check.high is not None:
        bounds.append(LessOrEqualMetricTest(threshold=check.high, **options))
    counted = {"tests": bounds} if check.statistic != "share" else {"share_tests": bounds}
    if check.kind == "row_count":
        return RowCount(tests=bounds)
    if check.kind == "duplicates":
        return DuplicatedRowCount(tests=bounds)
    column = check.column
    assert column is not None
    if check.kind == "missing_share":
        return MissingValueCount(column=column, **counted)
    if check.kind == "value_range":
        return OutRangeValueCount(column=column, left=check.left, right=check.right, **counted)
    if check.kind == "new_category":
        return OutListValueCount(column=column, values=list(check.categories), **counted)
    # constant: more than one distinct value, stated as Evidently can test it
    present = cur[column].dropna()
    if pd.api.types.is_numeric_dtype(present):
        return MaxValue(
            column=column, tests=[GreaterThanMetricTest(threshold=float(present.min()), **options)]
        )
    mode = str(present.mode().iloc[0])
    return CategoryCount(
        column=column, category=mode, share_tests=[LessThanMetricTest(threshold=1.0, **options)]
    )


def empty_report_html() -> ReportPage:
    """The page of a report without metrics: Evidently's scripts with no data in them."""
    empty = Report([]).run(Dataset.from_pandas(pd.DataFrame({"value": [0.0]})), None)
    return snapshot_html(empty)
