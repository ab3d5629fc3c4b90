"""Per-column drift with Evidently's stat-test registry, called exactly as its `ValueDrift` does."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

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
    """Problems with the (legacy mode) stat tests a model's config names: one per setting, not one
    per column.

    An unknown name comes with the closest registered one; a test of the wrong type for some
    columns lists them; a threshold outside the range of the test's meaning (a p-value in (0, 1), a
    distance in its own) is named once per threshold setting.
    """
    uses: dict[tuple[str, str], list[tuple[str, ColumnType]]] = {}
    thresholds: dict[tuple[str, str, float], None] = {}  # (path, stattest, threshold), in order
    for column, _role, column_type in drift_columns(model):
        stattest, threshold = column_options(model, column)
        if stattest is None:
            continue
        own = model.drift.per_column.get(column)
        path = f"drift.per_column.{column}.stattest" if own and own.stattest else "drift.stattest"
        uses.setdefault((path, stattest), []).append((column, column_type))
        if threshold is not None:
            own_threshold = own is not None and own.threshold is not None
            at = f"drift.per_column.{column}.threshold" if own_threshold else "drift.threshold"
            thresholds[(at, stattest, threshold)] = None
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
    for at, stattest, threshold in thresholds:
        problem = _threshold_problem(stattest, threshold)
        if problem and stattest in _registered_stat_tests:
            problems.append(f"{where}.{at}: {problem}")
    return problems


def _threshold_problem(stattest: str, threshold: float) -> str | None:
    meaning = MEANINGS.get(stattest)
    if meaning is None:
        return None
    if meaning.meaning == "p_value" and not 0 < threshold < 1:
        return f"threshold {threshold} for {stattest} is not a p-value: it must be between 0 and 1"
    if meaning.meaning == "distance" and threshold >= meaning.upper:
        return (
            f"threshold {threshold} for {stattest} can never be reached: "
            f"the distance is at most {meaning.upper:.4f}"
        )
    return None


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


def legacy_drift(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, target_gate: str | None = None
) -> DriftOutcome:
    """Evidently's defaults and the share rule, exactly as before `drift.mode` existed.
    `target_gate`: why the target is not tested on this window (label_bias.target_drift_gate)."""
    drifts: list[ColumnDrift] = []
    skipped: list[SkippedColumn] = []
    for column, role, column_type in drift_columns(model):
        if role == "target" and target_gate:
            skipped.append(SkippedColumn(column, role, target_gate, target_gate))  # too few or biased labels
            continue
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
