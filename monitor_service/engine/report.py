"""Evidently's full Report (with widgets) and its HTML page, for the checks `compute` runs."""

from __future__ import annotations

from typing import Any

import pandas as pd
from evidently import Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from monitor_service.config import ModelConfig
from monitor_service.engine.columns import column_options, data_definition, drift_columns
from monitor_service.engine.drift import clean
from monitor_service.engine.html import render_page
from monitor_service.results import ReportPage


def build_report(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> Any:
    """The full Evidently Report (with widgets) for the same checks `compute` runs: the drift preset
    over the features (its table and drifted-columns count), plus target and prediction drift."""
    drift = model.drift
    testable = {
        name
        for name, _, _ in drift_columns(model)
        if _has_values(reference, name) and _has_values(current, name)
    }
    features = [name for name, role, _ in drift_columns(model) if role == "feature" and name in testable]
    per_column = {c: cfg for c, cfg in drift.per_column.items() if c in features}
    metrics: list[Any] = []
    if features:
        metrics.append(
            DataDriftPreset(
                columns=features,
                drift_share=drift.share,
                method=drift.stattest,
                threshold=drift.threshold,
                per_column_method={c: cfg.stattest for c, cfg in per_column.items() if cfg.stattest} or None,
                per_column_threshold={
                    c: cfg.threshold for c, cfg in per_column.items() if cfg.threshold is not None
                }
                or None,
            )
        )
    for column, role, _type in drift_columns(model):
        if role != "feature" and column in testable:
            stattest, threshold = column_options(model, column)
            metrics.append(ValueDrift(column=column, method=stattest, threshold=threshold))
    definition = data_definition(model)
    current = current[[c for c in current.columns if c in reference.columns]]
    return Report(metrics).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def _has_values(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and not clean(frame[column]).empty


def report_html(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> ReportPage:
    """Evidently's interactive HTML report (one self-contained page) of `build_report`, with the
    data escaped so that no value can run as script, and the policy to serve it with."""
    return snapshot_html(build_report(model, reference, current))


def snapshot_html(snapshot: Any) -> ReportPage:
    """The page of an Evidently snapshot (built now, or loaded from its stored JSON), escaped."""
    return render_page(snapshot)
