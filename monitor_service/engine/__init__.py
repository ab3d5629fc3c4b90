"""The only package that computes with Evidently: (model, reference, current) -> CalculationResult.

Two drift modes (`drift.mode`):
- `tested` (default): per-column two-sample tests registered in Evidently's stat-test registry
  (engine/stattests.py), chosen once per column from the config and the reference (engine/plan.py),
  corrected across the model's columns, with effect-size floors, the missing share as a signal of
  its own, and a multivariate domain classifier (engine/domain.py); see engine/tested.py.
- `legacy`: Evidently's own default test selection and thresholds and the share-of-drifted-columns
  rule, exactly as `ValueDrift` and `DataDriftPreset` compute them (engine/drift.py).

Either way the scores come from Evidently's registry called as `ValueDrift` calls it (same cleaning
of infinities and nulls), without building a `Report`: a report also renders plotly widgets for
every column, which is most of its cost. `build_report()` gives that full Report on demand; the
tests prove both agree.
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
from monitor_service.engine.drift import (
    ColumnSkipped,
    DriftOutcome,
    check_stattests,
    column_drift,
    legacy_drift,
)
from monitor_service.engine.label_bias import target_drift_gate, window_label_bias
from monitor_service.engine.plan import check_tested
from monitor_service.engine.quality import model_quality, reference_quality
from monitor_service.engine.report import build_report, report_html
from monitor_service.engine.tested import tested_drift
from monitor_service.engine.tests_suite import run_tests
from monitor_service.results import CalculationResult, ColumnQuality

__all__ = [
    "CATEGORICAL",
    "NUMERICAL",
    "ColumnSkipped",
    "build_report",
    "check_config",
    "check_settings",
    "check_stattests",
    "column_drift",
    "column_options",
    "column_quality",
    "compute",
    "data_definition",
    "drift_columns",
    "drift_outcome",
    "model_quality",
    "reference_quality",
    "report_html",
    "run_tests",
]


def drift_outcome(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, target_gate: str | None = None
) -> DriftOutcome:
    """The drift half of a calculation, in the model's drift mode; `target_gate` says why the target
    is not tested on this window (label_bias.target_drift_gate), if it is not."""
    if model.drift.mode == "legacy":
        return legacy_drift(model, reference, current, target_gate)
    return tested_drift(model, reference, current, target_gate)


def compute(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> CalculationResult:
    """Run every enabled check of `model` on the current window against the reference."""
    started = time.perf_counter()
    target = model.columns.target
    labelled = int(current[target].notna().sum()) if target else 0
    bias = window_label_bias(model, reference, current)
    gate = target_drift_gate(model, labelled, bias) if target else None
    drift = drift_outcome(model, reference, current, gate)
    quality: list[ColumnQuality] = []
    if "data_quality" in model.metrics:
        quality = [
            column_quality(column, role, column_type, reference[column], current[column])
            for column, role, column_type in quality_columns(model)
        ]
    detail = model_quality(model, reference, current)
    return CalculationResult(
        model=model.name,
        finished_at=time.time(),
        duration_seconds=time.perf_counter() - started,
        current_rows=len(current),
        reference_rows=len(reference),
        drift_share=drift.drift_share,
        dataset_drift=drift.dataset_drift,
        drifted_columns=drift.drifted_columns,
        tested_columns=drift.tested_columns,
        columns=drift.columns,
        quality=tuple(quality),
        skipped=drift.skipped,
        model_quality={m.metric: m.value for m in detail.metrics} if detail else {},
        labelled_rows=labelled,
        model_quality_detail=detail,
        label_bias=bias,
        tests=run_tests(model, reference, current),
        mode=model.drift.mode,
        alpha=drift.alpha,
        correction=model.drift.correction if model.drift.mode == "tested" else None,
        classifier=drift.classifier,
        untestable_columns=drift.untestable,
    )


def check_config(model: ModelConfig, where: str) -> list[str]:
    """Problems of a model's drift settings that need Evidently's registry to see."""
    if model.drift.mode == "legacy":
        return check_stattests(model, where)
    return check_tested(model, where)


def check_settings(models: list[ModelConfig]) -> list[str]:
    """Problems with the models' drift settings (run in the worker at start, which also imports
    Evidently there before the first calculation, and by `check-config`)."""
    return [p for i, m in enumerate(models) for p in check_config(m, f"models[{i}]")]
