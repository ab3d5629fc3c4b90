"""Per-column drift with Evidently's stat-test registry, called exactly as its `ValueDrift` does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_registered_stattest, get_stattest
from evidently.legacy.core import ColumnType

from monitor_service.config import ModelConfig
from monitor_service.engine.columns import column_options, drift_columns
from monitor_service.engine.stattests import MEANINGS
from monitor_service.results import ColumnDrift, DomainClassifierResult, Role, SkippedColumn


@dataclass(frozen=True)
class DriftOutcome:
    """The drift half of a calculation result (either mode)."""

    columns: tuple[ColumnDrift, ...]
    skipped: tuple[SkippedColumn, ...]
    dataset_drift: bool | None
    drifted_columns: int
    tested_columns: int
    alpha: float | None = None
    classifier: DomainClassifierResult | None = None
    untestable: int = 0
    drift_share: float | None = None


def check_stattests(model: ModelConfig, where: str) -> list[str]:
    """Problems with the stat tests a model's config names: unknown, wrong for the column type, or a
    threshold outside the range of the test's meaning (a p-value in (0, 1), a distance in its own)."""
    problems = []
    for column, _role, column_type in drift_columns(model):
        stattest, threshold = column_options(model, column)
        if stattest is None:
            continue
        try:
            get_registered_stattest(stattest, column_type)
        except ValueError as exc:
            problems.append(f"{where}.drift (column {column!r}): {exc}")
            continue
        meaning = MEANINGS.get(stattest)
        if threshold is not None and meaning is not None:
            if meaning.meaning == "p_value" and not 0 < threshold < 1:
                problems.append(
                    f"{where}.drift (column {column!r}): threshold {threshold} for {stattest} is not a "
                    "p-value: it must be between 0 and 1"
                )
            elif meaning.meaning == "distance" and threshold >= meaning.upper:
                problems.append(
                    f"{where}.drift (column {column!r}): threshold {threshold} for {stattest} can never "
                    f"be reached: the distance is at most {meaning.upper:.4f}"
                )
    return problems


def clean(series: pd.Series) -> pd.Series:
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
    ref, cur = clean(reference), clean(current)
    if ref.empty or cur.empty:
        side = "reference" if ref.empty else "current window"
        code = "no_reference_values" if ref.empty else "no_current_values"
        raise ColumnSkipped(f"no non-null values in the {side}", code)
    try:
        test = get_stattest(ref, cur, column_type, stattest_name)
        result = test(ref, cur, column_type, threshold)
    except Exception as exc:  # e.g. a configured test that needs more rows or binary data
        raise ColumnSkipped(
            f"stat test {stattest_name or 'chosen by Evidently'} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not np.isfinite(result.drift_score):
        raise ColumnSkipped(
            f"stat test {test.name} gave no finite score ({result.drift_score}) on this window"
        )
    return ColumnDrift(
        column=column,
        role=role,
        stattest=test.name,
        score=float(result.drift_score),
        threshold=float(result.actual_threshold),
        detected=bool(result.drifted),
    )


def legacy_drift(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> DriftOutcome:
    """Evidently's defaults and the share rule, exactly as before `drift.mode` existed."""
    drifts: list[ColumnDrift] = []
    skipped: list[SkippedColumn] = []
    for column, role, column_type in drift_columns(model):
        if role == "target" and current[column].isna().all():
            continue  # labels have not arrived in this window: no target drift to report
        try:
            drifts.append(column_drift(model, column, role, column_type, reference[column], current[column]))
        except ColumnSkipped as skip:
            skipped.append(SkippedColumn(column, role, str(skip), skip.code))
    features = [d for d in drifts if d.role == "feature"]
    drifted = sum(d.detected for d in features)
    share = model.drift.share
    return DriftOutcome(
        columns=tuple(drifts),
        skipped=tuple(skipped),
        dataset_drift=(drifted / len(features) >= share) if features else None,
        drifted_columns=drifted,
        tested_columns=len(features),
        drift_share=share,
    )


class ColumnSkipped(Exception):
    """A column cannot be tested in this window; the reason is reported, the calculation goes on."""

    def __init__(self, message: str, code: str = "test_failed") -> None:
        super().__init__(message)
        self.code = code
