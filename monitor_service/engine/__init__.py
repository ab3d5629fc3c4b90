"""The only package that computes with Evidently: (model, reference, current) -> CalculationResult.

Drift scores come from Evidently's own stat-test registry, called exactly as its `ValueDrift`
metric calls it (same test selection by type and size, same cleaning of infinities and nulls,
same thresholds), without building a `Report`: a report also renders plotly widgets for every
column, which is most of its cost and which a monitor only needs when someone opens the HTML
report. `build_report()` gives that full Report on demand; the tests prove both agree.
"""

from __future__ import annotations

import time

import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.engine.columns import (
    CATEGORICAL,
    NUMERICAL,
    column_options,
    data_definition,
    drift_columns,
    quality_columns,
)
from monitor_service.engine.data_quality import column_quality
from monitor_service.engine.drift import ColumnSkipped, check_stattests, column_drift
from monitor_service.engine.label_bias import target_drift_gate, window_label_bias
from monitor_service.engine.quality import model_quality, reference_quality
from monitor_service.engine.report import build_report, report_html
from monitor_service.engine.tests_suite import run_tests
from monitor_service.results import CalculationResult, ColumnDrift, ColumnQuality, SkippedColumn

__all__ = [
    "CATEGORICAL",
    "NUMERICAL",
    "build_report",
    "check_settings",
    "check_stattests",
    "column_drift",
    "column_options",
    "column_quality",
    "compute",
    "data_definition",
    "drift_columns",
    "model_quality",
    "reference_quality",
    "report_html",
    "run_tests",
]


def compute(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> CalculationResult:
    """Run every enabled check of `model` on the current window against the reference."""
    started = time.perf_counter()
    target = model.columns.target
    labelled = int(current[target].notna().sum()) if target else 0
    bias = window_label_bias(model, reference, current)
    drifts: list[ColumnDrift] = []
    skipped: list[SkippedColumn] = []
    for column, role, column_type in drift_columns(model):
        if role == "target" and (gate := target_drift_gate(model, labelled, bias)):
            skipped.append(SkippedColumn(column, role, gate))  # too few labels, or biased ones
            continue
        try:
            drifts.append(column_drift(model, column, role, column_type, reference[column], current[column]))
        except ColumnSkipped as skip:
            skipped.append(SkippedColumn(column, role, str(skip)))
    quality: list[ColumnQuality] = []
    if "data_quality" in model.metrics:
        quality = [
            column_quality(column, role, column_type, reference[column], current[column])
            for column, role, column_type in quality_columns(model)
        ]
    detail = model_quality(model, reference, current)
    features = [d for d in drifts if d.role == "feature"]
    drifted = sum(d.detected for d in features)
    share = model.drift.share
    return CalculationResult(
        model=model.name,
        finished_at=time.time(),
        duration_seconds=time.perf_counter() - started,
        current_rows=len(current),
        reference_rows=len(reference),
        drift_share=share,
        dataset_drift=(drifted / len(features) >= share) if features else None,
        drifted_columns=drifted,
        tested_columns=len(features),
        columns=tuple(drifts),
        quality=tuple(quality),
        skipped=tuple(skipped),
        model_quality={m.metric: m.value for m in detail.metrics} if detail else {},
        labelled_rows=labelled,
        model_quality_detail=detail,
        label_bias=bias,
        tests=run_tests(model, reference, current),
    )


def check_settings(models: list[ModelConfig]) -> list[str]:
    """Problems with the models' drift settings (run in the worker at start, which also imports
    Evidently there before the first calculation, and by `check-config`)."""
    return [p for i, m in enumerate(models) for p in check_stattests(m, f"models[{i}]")]
