"""The only module that imports Evidently: (model, reference, current) -> CalculationResult.

Drift scores come from Evidently's own stat-test registry, called exactly as its `ValueDrift`
metric calls it (same test selection by type and size, same cleaning of infinities and nulls,
same thresholds), without building a `Report`: a report also renders plotly widgets for every
column, which is most of its cost and which a monitor only needs when someone opens the HTML
report. `build_report()` gives that full Report on demand; the tests prove both agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
from evidently.legacy.calculations.stattests.registry import get_registered_stattest, get_stattest
from evidently.legacy.core import ColumnType
from evidently.metrics import (
    MAE,
    MAPE,
    RMSE,
    Accuracy,
    F1Score,
    Precision,
    R2Score,
    Recall,
    RocAuc,
    ValueDrift,
)
from evidently.presets import DataDriftPreset

from monitor_service.config import ModelConfig
from monitor_service.results import (
    CalculationResult,
    ColumnDrift,
    ColumnQuality,
    Role,
    SkippedColumn,
)

NUMERICAL = ColumnType.Numerical
CATEGORICAL = ColumnType.Categorical


def drift_columns(model: ModelConfig) -> Iterator[tuple[str, Role, ColumnType]]:
    """Every column drift is measured on, with its role and Evidently type, as the config enables."""
    cols = model.columns
    if "data_drift" in model.metrics:
        yield from ((name, "feature", NUMERICAL) for name in cols.numerical)
        yield from ((name, "feature", CATEGORICAL) for name in cols.categorical)
    if "target_drift" in model.metrics and cols.target:
        yield cols.target, "target", _label_type(model)
    if "prediction_drift" in model.metrics:
        yield from _prediction_columns(model)


def _label_type(model: ModelConfig) -> ColumnType:
    """Targets and single prediction columns: numbers for regression, classes for classification."""
    return NUMERICAL if model.task == "regression" else CATEGORICAL


def _prediction_columns(model: ModelConfig) -> Iterator[tuple[str, Role, ColumnType]]:
    cols = model.columns
    for name in cols.prediction_columns:
        yield name, "prediction", _label_type(model) if name == cols.prediction else NUMERICAL


def column_options(model: ModelConfig, column: str) -> tuple[str | None, float | None]:
    """The configured stat test and threshold of a column: per-column settings win over global ones."""
    own = model.drift.per_column.get(column)
    stattest = own.stattest if own and own.stattest else model.drift.stattest
    threshold = own.threshold if own and own.threshold is not None else model.drift.threshold
    return stattest, threshold


def check_stattests(model: ModelConfig, where: str) -> list[str]:
    """Problems with the stat tests a model's config names (unknown, or wrong for the column type)."""
    problems = []
    for column, _role, column_type in drift_columns(model):
        stattest, _ = column_options(model, column)
        if stattest is None:
            continue
        try:
            get_registered_stattest(stattest, column_type)
        except ValueError as exc:
            problems.append(f"{where}.drift (column {column!r}): {exc}")
    return problems


def _clean(series: pd.Series) -> pd.Series:
    """What Evidently drops before testing: nulls and infinities."""
    return series.replace([-np.inf, np.inf], np.nan).dropna()


def column_drift(
    model: ModelConfig,
    column: str,
    role: Role,
    column_type: ColumnType,
    reference: pd.Series,
    current: pd.Series,
) -> ColumnDrift:
    stattest_name, threshold = column_options(model, column)
    ref, cur = _clean(reference), _clean(current)
    if ref.empty or cur.empty:
        side = "reference" if ref.empty else "current window"
        raise _Skip(f"no non-null values in the {side}")
    try:
        test = get_stattest(ref, cur, column_type, stattest_name)
        result = test(ref, cur, column_type, threshold)
    except Exception as exc:  # e.g. a configured test that needs more rows or binary data
        raise _Skip(
            f"stat test {stattest_name or 'chosen by Evidently'} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not np.isfinite(result.drift_score):
        raise _Skip(f"stat test {test.name} gave no finite score ({result.drift_score}) on this window")
    return ColumnDrift(
        column=column,
        role=role,
        stattest=test.name,
        score=float(result.drift_score),
        threshold=float(result.actual_threshold),
        detected=bool(result.drifted),
    )


class _Skip(Exception):
    """A column cannot be tested in this window; the reason is reported, the calculation goes on."""


def _missing_ratio(series: pd.Series) -> float:
    return float(series.isna().mean()) if len(series) else 0.0


def column_quality(
    column: str, role: Role, column_type: ColumnType, reference: pd.Series, current: pd.Series
) -> ColumnQuality:
    """Missing values in both datasets; out-of-range share (numbers) or unseen-category share."""
    out_of_range = new_category = None
    present = current.dropna()
    if column_type == NUMERICAL:
        low, high = reference.min(), reference.max()
        outside = (present < low) | (present > high) if pd.notna(low) else present == present
        out_of_range = float(outside.sum() / len(current)) if len(current) else 0.0
    else:
        unseen = ~present.isin(set(reference.dropna().unique()))
        new_category = float(unseen.sum() / len(current)) if len(current) else 0.0
    return ColumnQuality(
        column, role, _missing_ratio(current), _missing_ratio(reference), out_of_range, new_category
    )


def compute(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> CalculationResult:
    """Run every enabled check of `model` on the current window against the reference."""
    started = time.perf_counter()
    drifts: list[ColumnDrift] = []
    skipped: list[SkippedColumn] = []
    for column, role, column_type in drift_columns(model):
        if role == "target" and current[column].isna().all():
            continue  # labels have not arrived in this window: no target drift to report
        try:
            drifts.append(column_drift(model, column, role, column_type, reference[column], current[column]))
        except _Skip as skip:
            skipped.append(SkippedColumn(column, role, str(skip)))
    quality: list[ColumnQuality] = []
    if "data_quality" in model.metrics:
        quality = [
            column_quality(column, role, column_type, reference[column], current[column])
            for column, role, column_type in _quality_columns(model)
        ]
    quality_values, labelled, quality_problem = model_quality(model, current)
    if quality_problem and model.columns.target:
        skipped.append(SkippedColumn(model.columns.target, "target", quality_problem))
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
        model_quality=quality_values,
        labelled_rows=labelled,
    )


REGRESSION_METRICS = {"mae": MAE, "rmse": RMSE, "mape": MAPE, "r2": R2Score}
CLASSIFICATION_METRICS = {"accuracy": Accuracy, "precision": Precision, "recall": Recall, "f1": F1Score}


def labelled_rows(model: ModelConfig, current: pd.DataFrame) -> pd.DataFrame:
    """Rows of the window that carry both a label and the model's output."""
    cols = model.columns
    if not cols.target or not cols.prediction_columns:
        return current.iloc[0:0]
    mask = current[cols.target].notna()
    for name in cols.prediction_columns:
        mask &= current[name].notna()
    return current[mask]


def model_quality(model: ModelConfig, current: pd.DataFrame) -> tuple[dict[str, float], int, str | None]:
    """Evidently's quality metrics on the labelled rows (regression errors, or binary
    classification), the number of those rows, and why there are none when they cannot be had."""
    if "model_quality" not in model.metrics:
        return {}, 0, None
    rows = labelled_rows(model, current)
    if rows.empty:
        return {}, 0, None
    cols = model.columns
    if model.task == "classification" and rows[cols.target].nunique() < 2:
        return (
            {},
            len(rows),
            "the labelled rows hold a single class: precision, recall and ROC AUC are undefined",
        )
    try:
        return _quality_values(model, rows), len(rows), None
    except Exception as exc:  # Evidently refuses this data; drift results must not be lost with it
        return {}, len(rows), f"Evidently could not compute model quality: {type(exc).__name__}: {exc}"


def _quality_values(model: ModelConfig, rows: pd.DataFrame) -> dict[str, float]:
    cols = model.columns
    if model.task == "regression":
        assert isinstance(cols.prediction, str)
        task = Regression(target=cols.target, prediction=cols.prediction)
        definition = DataDefinition(numerical_columns=[cols.target, cols.prediction], regression=[task])
        metrics = dict(REGRESSION_METRICS)
    else:
        labels = cols.prediction if isinstance(cols.prediction, str) else None
        binary = BinaryClassification(
            target=cols.target,
            prediction_labels=labels,
            prediction_probas=cols.probability,
            pos_label=cols.positive_label,
        )
        definition = DataDefinition(
            categorical_columns=[c for c in (cols.target, labels) if c],
            numerical_columns=[cols.probability] if cols.probability else [],
            classification=[binary],
        )
        metrics = {**CLASSIFICATION_METRICS, **({"roc_auc": RocAuc} if cols.probability else {})}
    snapshot = Report([metric() for metric in metrics.values()]).run(
        Dataset.from_pandas(rows.reset_index(drop=True), data_definition=definition), None
    )
    values = {}
    for name, result in zip(metrics, snapshot.dict()["metrics"], strict=True):
        value = result["value"]
        number = float(value["mean"] if isinstance(value, dict) else value)
        if np.isfinite(number):  # undefined on this window (R² of one row): left out, not NaN
            values[name] = number
    return values


def _quality_columns(model: ModelConfig) -> Iterator[tuple[str, Role, ColumnType]]:
    cols = model.columns
    yield from ((name, "feature", NUMERICAL) for name in cols.numerical)
    yield from ((name, "feature", CATEGORICAL) for name in cols.categorical)
    yield from _prediction_columns(model)


def data_definition(model: ModelConfig) -> DataDefinition:
    """Evidently's view of the model's columns (categories and labels as in `drift_columns`)."""
    numerical = [name for name, _, t in drift_columns(model) if t == NUMERICAL]
    categorical = [name for name, _, t in drift_columns(model) if t == CATEGORICAL]
    return DataDefinition(numerical_columns=numerical, categorical_columns=categorical)


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
    return column in frame and not _clean(frame[column]).empty


def report_html(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> str:
    """Evidently's interactive HTML report (one self-contained page) of `build_report`."""
    html: str = build_report(model, reference, current).get_html_str(as_iframe=False)
    return html


def warm_up(models: list[ModelConfig]) -> list[str]:
    """Run in the calculation worker at start: imports Evidently there and checks the stat tests."""
    return [p for i, m in enumerate(models) for p in check_stattests(m, f"models[{i}]")]
