"""Tested mode: which test and effect size each column gets, chosen once from the config and the
reference (never re-chosen per window), and the checks of those choices against their meaning."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_registered_stattest
from evidently.legacy.core import ColumnType

from monitor_service.config import EFFECT_UPPER, ModelConfig
from monitor_service.engine import stattests
from monitor_service.engine.columns import CATEGORICAL, NUMERICAL, drift_columns
from monitor_service.results import Role

# A numerical column with at most this many distinct values in the reference is tested as
# categories: the K-S test is valid but needlessly weak on a handful of tied values.
DISCRETE_MAX_VALUES = 5
# Tests refused in tested mode, with the reason.
REFUSED_TESTS = {
    "g_test": "Evidently's g_test raises unless the window and the reference have the same size",
}


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is tested: a p-value test, an effect size and its floor."""

    column: str
    role: Role
    column_type: ColumnType  # as configured
    test_type: ColumnType  # as the test and effect size see it (discrete numbers as categories)
    test: str
    effect: str  # the registered effect measure, e.g. wasserstein_clipped
    measure: str  # the measure the floor is expressed in: wasserstein, jensenshannon or psi
    min_effect: float


def plan_columns(model: ModelConfig, reference: pd.DataFrame) -> list[ColumnPlan]:
    """The test, effect measure and floor of every drift column of the model."""
    drift = model.drift
    plans = []
    for column, role, column_type in drift_columns(model):
        own = drift.per_column.get(column)
        discrete = (
            column_type == NUMERICAL
            and column in reference
            and reference[column].nunique(dropna=True) <= DISCRETE_MAX_VALUES
        )
        test_type = CATEGORICAL if discrete else column_type
        if own is not None and own.test:
            test = own.test
        else:
            test = "ks_2samp" if test_type == NUMERICAL else "chi2_homogeneity"
        measure = own.effect if own is not None and own.effect else _default_measure(model, test_type)
        clip = drift.effect.clip_to_reference and column_type == NUMERICAL
        effect = f"{measure}_clipped" if clip else measure
        floor = drift.min_effect.of(measure)
        if own is not None and own.min_effect is not None:
            floor = own.min_effect
        plans.append(ColumnPlan(column, role, column_type, test_type, test, effect, measure, floor))
    return plans


def _default_measure(model: ModelConfig, test_type: ColumnType) -> str:
    effect = model.drift.effect
    return effect.numerical if test_type == NUMERICAL else effect.categorical


def family_size(model: ModelConfig) -> int:
    """The largest number of p-values corrected together: every drift column and, when the missing
    share is tested, every feature and prediction column once more."""
    columns = list(drift_columns(model))
    missing = sum(role != "target" for _, role, _ in columns) if model.drift.missing else 0
    return len(columns) + missing


def check_tested(model: ModelConfig, where: str) -> list[str]:
    """Problems of a tested-mode config: each test must return a p-value and exist for the column's
    type; each effect floor must be reachable by its measure."""
    problems = []
    for column, _role, column_type in drift_columns(model):
        own = model.drift.per_column.get(column)
        if own is None:
            continue
        at = f"{where}.drift.per_column.{column}"
        if own.test:
            problems += _check_test(own.test, column_type, at)
        if own.min_effect is not None and own.effect is None:
            measure = _default_measure(model, column_type)
            if own.min_effect >= EFFECT_UPPER[measure]:
                problems.append(
                    f"{at}.min_effect: {own.min_effect} can never be reached by {measure} "
                    f"(at most {EFFECT_UPPER[measure]:.4f})"
                )
    return problems


def _check_test(name: str, column_type: ColumnType, at: str) -> list[str]:
    if name in REFUSED_TESTS:
        return [f"{at}.test: {name} is refused: {REFUSED_TESTS[name]}"]
    try:
        get_registered_stattest(name, column_type)
    except ValueError as exc:
        message = str(exc).split(". Available")[0]
        return [f"{at}.test: {message}"]
    meaning = stattests.MEANINGS.get(name)
    if meaning is None or meaning.meaning != "p_value":
        kind = "a distance" if meaning else "of unknown meaning"
        return [
            f"{at}.test: {name} is {kind}, not a test returning a p-value; use it as `effect` "
            "(wasserstein, jensenshannon, psi) or choose a test such as ks or chi2_homogeneity"
        ]
    return []
