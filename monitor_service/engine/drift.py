"""Per-column drift with Evidently's stat-test registry, called exactly as its `ValueDrift` does."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import (
    _registered_stat_tests,  # the names, for suggestions; Evidently's error lists them all
    get_registered_stattest,
    get_stattest,
)
from evidently.legacy.core import ColumnType

from monitor_service.config import ModelConfig
from monitor_service.engine.columns import column_options, drift_columns
from monitor_service.results import ColumnDrift, Role


def check_stattests(model: ModelConfig, where: str) -> list[str]:
    """Problems with the stat tests a model's config names: one per setting, not one per column.

    An unknown name comes with the closest registered one; a test of the wrong type for some
    columns lists them.
    """
    uses: dict[tuple[str, str], list[tuple[str, ColumnType]]] = {}
    for column, _role, column_type in drift_columns(model):
        stattest, _ = column_options(model, column)
        if stattest is None:
            continue
        own = model.drift.per_column.get(column)
        path = f"drift.per_column.{column}.stattest" if own and own.stattest else "drift.stattest"
        uses.setdefault((path, stattest), []).append((column, column_type))
    problems = []
    for (path, stattest), columns in uses.items():
        if stattest not in _registered_stat_tests:
            close = difflib.get_close_matches(stattest, list(_registered_stat_tests), n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else "known: " + ", ".join(sorted(_registered_stat_tests))
            )
            problems.append(f"{where}.{path}: unknown stat test {stattest!r}; {hint}")
            continue
        wrong = [column for column, column_type in columns if not _fits(stattest, column_type)]
        if wrong:
            kinds = " or ".join(sorted(_KINDS.get(t, str(t)) for t in _registered_stat_tests[stattest]))
            problems.append(
                f"{where}.{path}: stat test {stattest!r} is for {kinds} columns, not "
                + ", ".join(repr(c) for c in wrong)
            )
    return problems


_KINDS = {ColumnType.Numerical: "numerical", ColumnType.Categorical: "categorical", ColumnType.Text: "text"}


def _fits(stattest: str, column_type: ColumnType) -> bool:
    try:
        get_registered_stattest(stattest, column_type)
    except ValueError:
        return False
    return True


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
