"""Per-column drift with Evidently's stat-test registry, called exactly as its `ValueDrift` does."""

from __future__ import annotations

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_registered_stattest, get_stattest
from evidently.legacy.core import ColumnType

from monitor_service.config import ModelConfig
from monitor_service.engine.columns import column_options, drift_columns
from monitor_service.results import ColumnDrift, Role


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
        raise ColumnSkipped(f"no non-null values in the {side}")
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


class ColumnSkipped(Exception):
    """A column cannot be tested in this window; the reason is reported, the calculation goes on."""
