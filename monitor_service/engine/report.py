"""Evidently's full Report (with widgets) and its HTML page, for the checks `compute` runs.

Tested mode: one `ValueDrift` per column and registered test (its raw p-value) and per effect measure
(its effect size), each thresholded where our verdict decides, with the verdict itself on top
(engine/verdict.py): corrected p-values, the classifier, the dataset verdict. Legacy mode:
Evidently's drift preset, as before. Pages are rendered by engine/html.py, data escaped.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from evidently import Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from monitor_service.config import ModelConfig
from monitor_service.engine.columns import column_options, data_definition, drift_columns
from monitor_service.engine.drift import DriftOutcome, clean
from monitor_service.engine.html import render_page
from monitor_service.engine.plan import plan_columns
from monitor_service.engine.tested import split_alpha, tested_drift
from monitor_service.engine.verdict import verdict_widgets
from monitor_service.results import ReportPage


def build_report(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, outcome: DriftOutcome | None = None
) -> Any:
    """The full Evidently Report (with widgets) for the same checks `compute` runs. Legacy mode: the
    drift preset over the features (its table and drifted-columns count), plus target and prediction
    drift. Tested mode: each column's test and effect size, thresholded as `outcome` (computed now
    when not given) decided; `with_verdict` puts the verdict on top."""
    if model.drift.mode == "tested":
        return _tested_report(model, reference, current, outcome)
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


def _tested_report(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, outcome: DriftOutcome | None = None
) -> Any:
    """One ValueDrift per column for its test and one for its effect size, each with the threshold
    at which it decides as our verdict does: the p-value widget against the raw p-value whose
    corrected value equals alpha, the effect widget against the floor with its noise allowance."""
    outcome = outcome or tested_drift(model, reference, current)
    alpha = outcome.alpha or split_alpha(model)[0]
    tested = {c.column: c for c in outcome.columns}
    metrics: list[Any] = []
    for plan in plan_columns(model, reference):
        column = tested.get(plan.column)
        if column is None or column.p_value is None or column.corrected_p_value is None:
            continue
        raw_alpha = alpha * column.p_value / column.corrected_p_value if column.corrected_p_value else alpha
        metrics.append(ValueDrift(column=plan.column, method=plan.test, threshold=min(raw_alpha, alpha)))
        metrics.append(ValueDrift(column=plan.column, method=plan.effect, threshold=column.min_effect))
    definition = data_definition(model)
    current = current[[c for c in current.columns if c in reference.columns]]
    return Report(metrics).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def _has_values(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and not clean(frame[column]).empty


def report_html(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> ReportPage:
    """Evidently's interactive HTML report (one self-contained page) of `build_report`, in tested mode
    with the verdict on top, with the data escaped so that no value can run as script, and the policy
    to serve it with."""
    if model.drift.mode != "tested":
        return snapshot_html(build_report(model, reference, current))
    outcome = tested_drift(model, reference, current)
    report = _tested_report(model, reference, current, outcome)
    return snapshot_html(with_verdict(report, model, outcome))


def with_verdict(snapshot: Any, model: ModelConfig, outcome: DriftOutcome) -> Any:
    """The snapshot with the tested mode's verdict widgets on top of its own."""
    data = snapshot.to_snapshot_model()
    data.widgets = [*verdict_widgets(model.name, outcome, model.drift.correction), *data.widgets]
    return Snapshot.load_model(data)


def snapshot_html(snapshot: Any) -> ReportPage:
    """The page of an Evidently snapshot (built now, or loaded from its stored JSON), escaped."""
    return render_page(snapshot)
