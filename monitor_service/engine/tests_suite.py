"""Pass/fail tests of a window, like Evidently's data-stability preset, with calibrated conditions.

Auto tests are derived from the reference: row count, missing values, values outside the
reference's range, categories the reference never had, constant columns and duplicated rows.
Evidently's own preset demands "no value outside the reference's [min, max]" or "missing share
within 10 % of the reference's", which large windows without any drift fail by chance alone (a
window of n rows beside a reference of m rows holds about 2n/(m+1) values outside the reference's
range). Here each stochastic bound is the quantile of the count under "the window and the reference
come from one distribution", so a window without drift fails any auto test of a model with
probability at most `tests.false_failure_rate`, split evenly over the tests (Bonferroni):

- missing values: one-sided Fisher exact test of the window's nulls against the reference's;
- outside the range: the exact rank distribution of the number of window values beyond the
  reference's minimum and maximum (distribution-free for continuous values, conservative with ties);
- new categories: a binomial bound with the Good-Turing estimate of the unseen mass, (f1 + 1)/(m + 1)
  (f1: categories seen once in the reference);
- duplicated rows: a Poisson bound on pairs of equal rows, from an upper limit of the
  reference's own rate of equal pairs;
- constant column: only tested when a constant window would be rare (sum of p_v^n below the bound).

bench/tests_suite.py measures the false-failure rate of each test, naive and calibrated, on
windows without drift. `plan_tests` fixes every condition; `run_tests` evaluates them with pandas
(cheap, every calculation); `report_metrics` states the same conditions as Evidently metrics with
tests, for the stored report, and tests/test_tests_suite.py proves both give the same verdicts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom, chi2, hypergeom, poisson

from monitor_service.config import CustomTestConfig, ModelConfig, TestKind
from monitor_service.engine.columns import NUMERICAL, quality_columns
from monitor_service.results import TestOutcome

MAX_CATEGORIES = 1000  # more distinct reference values: not a closed set, no new-category test
_STOCHASTIC: frozenset[str] = frozenset(
    {"missing_share", "value_range", "new_category", "constant", "duplicates"}
)


@dataclass(frozen=True)
class Check:
    """One condition of the suite, fixed before it is evaluated.

    `statistic` is what is compared: `rows` (window rows), `count` (offending rows), `share`
    (offending rows divided by the rows it is counted over) or `distinct` (values of the column).
    The test passes when `low <= value <= high` (either bound optional).
    """

    name: str
    kind: TestKind
    column: str | None
    critical: bool
    statistic: str
    low: float | None = None
    high: float | None = None
    left: float | None = None  # value_range
    right: float | None = None
    categories: tuple[str, ...] = ()  # new_category
    skip: str | None = None
    why: str = ""

    def passes(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def tested_columns(model: ModelConfig) -> list[tuple[str, bool]]:
    """(column, numerical) of every column the suite looks at: features and predictions."""
    return [(name, column_type == NUMERICAL) for name, _role, column_type in quality_columns(model)]


def tests_frame(model: ModelConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the suite looks at (duplicates are counted over exactly these)."""
    return frame[[name for name, _ in tested_columns(model) if name in frame.columns]]


def plan_tests(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> list[Check]:
    """Every check of the model's suite, with bounds for this window size."""
    settings = model.tests
    ref, cur = tests_frame(model, reference), tests_frame(model, current)
    checks: list[Check] = []
    if settings.auto:
        candidates = [c for c in _auto_candidates(model) if not _excluded(c, settings.exclude)]
        stochastic = sum(kind in _STOCHASTIC for kind, _ in candidates)
        alpha = settings.false_failure_rate / max(1, stochastic)
        present = _Present(ref, cur)
        for kind, column in candidates:
            check = _auto_check(model, kind, column, ref, cur, present, alpha)
            checks.append(_with(check, critical=True) if kind in settings.critical else check)
    checks.extend(_custom_check(t, cur) for t in settings.custom)
    return checks


def run_tests(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> tuple[TestOutcome, ...]:
    """The suite's outcomes on this window (pure: no state, no Evidently report)."""
    if not model.tests.auto and not model.tests.custom:
        return ()
    cur = tests_frame(model, current)
    return tuple(evaluate(check, cur) for check in plan_tests(model, reference, current))


def evaluate(check: Check, cur: pd.DataFrame) -> TestOutcome:
    """One check on the window's tested columns."""
    if check.skip is not None:
        return TestOutcome(check.name, check.kind, check.column, "skip", check.critical, None, check.skip)
    value = statistic(check, cur)
    passed = check.passes(value)
    return TestOutcome(
        check.name,
        check.kind,
        check.column,
        "pass" if passed else "fail",
        check.critical,
        value,
        f"{_describe(check, value)}: {'within' if passed else 'outside'} {_bounds(check)}"
        + (f" ({check.why})" if check.why else ""),
    )


def statistic(check: Check, cur: pd.DataFrame) -> float:
    """The value a check compares, computed as Evidently's metric computes it."""
    if check.kind == "row_count":
        return float(len(cur))
    if check.kind == "duplicates":
        return float(cur.duplicated().sum())
    assert check.column is not None
    series = cur[check.column]
    present = series.dropna()
    if check.kind == "constant":
        return float(present.nunique())
    if check.kind == "missing_share":
        count, total = float(len(series) - len(present)), len(series)
    elif check.kind == "value_range":
        assert check.left is not None and check.right is not None
        count, total = float(len(present) - present.between(check.left, check.right).sum()), len(present)
    else:  # new_category
        count, total = float((~present.isin(set(check.categories))).sum()), len(present)
    if check.statistic == "share":
        return count / total if total else 0.0
    return count


def _excluded(candidate: tuple[TestKind, str | None], exclude: list[str]) -> bool:
    kind, column = candidate
    return kind in exclude or (column is not None and f"{kind}:{column}" in exclude)


def _auto_candidates(model: ModelConfig) -> Iterator[tuple[TestKind, str | None]]:
    yield "row_count", None
    for column, numerical in tested_columns(model):
        yield "missing_share", column
        yield ("value_range" if numerical else "new_category"), column
        yield "constant", column
    yield "duplicates", None


def _with(check: Check, **changes: Any) -> Check:
    return Check(**{**check.__dict__, **changes})


class _Present:
    """Non-null values of each column of both frames, computed once per plan."""

    def __init__(self, ref: pd.DataFrame, cur: pd.DataFrame) -> None:
        self._frames = {"ref": ref, "cur": cur}
        self._cache: dict[tuple[str, str], pd.Series] = {}

    def __call__(self, side: str, column: str) -> pd.Series:
        key = (side, column)
        if key not in self._cache:
            self._cache[key] = self._frames[side][column].dropna()
        return self._cache[key]


def _auto_check(
    model: ModelConfig,
    kind: TestKind,
    column: str | None,
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    present: _Present,
    alpha: float,
) -> Check:
    name = kind if column is None else f"{kind}:{column}"
    n = len(cur)
    if kind == "row_count":
        low = float(model.schedule.min_rows)
        return Check(name, kind, None, False, "rows", low=low, why="schedule.min_rows")
    if kind == "duplicates":
        high, why = _duplicates_bound(n, ref, alpha)
        return Check(name, kind, None, False, "count", high=high, why=why)
    assert column is not None
    ref_values, cur_values = present("ref", column), present("cur", column)
    base = Check(name, kind, column, False, "count")
    if kind == "missing_share":
        missing_ref = len(ref) - len(ref_values)
        high = _missing_bound(n, len(ref), missing_ref, alpha)
        return _with(base, high=high, why=f"reference: {missing_ref} of {len(ref)} missing")
    if ref_values.empty:
        return _with(base, skip="the reference has no values in this column")
    if kind == "value_range":
        left, right = float(ref_values.min()), float(ref_values.max())
        if len(ref_values) < 2:
            return _with(base, skip="the reference has a single value in this column")
        high = _range_bound(len(cur_values), len(ref_values), alpha)
        return _with(base, high=high, left=left, right=right, why=f"reference range [{left:g}, {right:g}]")
    counts = ref_values.value_counts()
    if kind == "new_category":
        if len(counts) > MAX_CATEGORIES:
            return _with(base, skip=f"the reference has more than {MAX_CATEGORIES} categories")
        singletons = int((counts == 1).sum())
        unseen = (singletons + 1) / (len(ref_values) + 1)
        high = _binomial_bound(len(cur_values), unseen, alpha)
        categories = tuple(sorted(str(v) for v in counts.index))
        why = f"{len(categories)} reference categories, {singletons} seen once"
        return _with(base, high=high, categories=categories, why=why)
    # constant: more than one distinct value, where one value alone would be unlikely by chance
    if len(counts) < 2:
        return _with(base, skip="the reference is constant in this column too")
    if cur_values.empty:
        return _with(base, skip="no values in the window")
    shares = counts.to_numpy(dtype=float) / len(ref_values)
    chance = float(np.sum(shares ** len(cur_values)))
    if chance >= alpha:
        return _with(base, skip=f"a constant window is not rare at this size (chance {chance:.2g})")
    return _with(base, statistic="distinct", low=2.0, why=f"chance of a constant window {chance:.1g}")


def _custom_check(test: CustomTestConfig, cur: pd.DataFrame) -> Check:
    base = Check(test.name, test.kind, test.column, test.critical, "share", why="custom test")
    if test.kind == "row_count":
        return _with(base, statistic="rows", low=test.min, high=test.max)
    if test.kind == "constant":
        assert test.column is not None
        if cur[test.column].dropna().empty:
            return _with(base, skip="no values in the window")
        return _with(base, statistic="distinct", low=2.0)
    high = test.max_share if test.max_share is not None else 0.0
    if test.kind == "duplicates":  # Evidently tests the count: the same bound, in rows
        return _with(base, statistic="count", high=high * len(cur))
    if test.kind == "value_range":
        return _with(base, high=high, left=test.min, right=test.max)
    if test.kind == "new_category":
        return _with(base, high=high, categories=tuple(test.values or ()))
    return _with(base, high=high)


@functools.lru_cache(maxsize=4096)
def _missing_bound(n: int, m: int, missing_ref: int, alpha: float) -> float:
    """Most nulls a window of n rows may hold: the largest x whose one-sided Fisher exact p-value,
    P(X >= x) for X ~ Hypergeometric(n + m, missing_ref + x, n), is still at least alpha."""
    if n == 0:
        return 0.0

    def p_value(x: int) -> float:
        return float(hypergeom.sf(x - 1, n + m, missing_ref + x, n))

    low, high = 0, 1  # p_value(0) == 1; p_value falls as x grows: find a failing x, then bisect
    while p_value(high) >= alpha:
        if high == n:
            return float(n)
        low, high = high, min(n, 2 * high)
    while high - low > 1:
        middle = (low + high) // 2
        if p_value(middle) >= alpha:
            low = middle
        else:
            high = middle
    return float(low)


@functools.lru_cache(maxsize=4096)
def _range_bound(n: int, m: int, alpha: float) -> float:
    """Most window values allowed outside the reference's [min, max]: the smallest k with
    P(K > k) <= alpha, where K counts the window values above the reference's maximum or below its
    minimum when the n + m values are exchangeable (continuous; ties only make K smaller).

    With F(j) = n(n-1)...(n-j+1) / (N(N-1)...(N-j+1)), N = n + m, the chance that the top a and the
    bottom b values all come from the window is F(a + b), so P(K = j) = (j + 1)(F(j) - 2F(j+1) + F(j+2)).
    """
    if n == 0:
        return 0.0
    big_n = n + m

    def step(f: float, j: int) -> float:  # F(j + 1) from F(j)
        return f * max(0, n - j) / (big_n - j)

    tail = 1.0
    f0 = 1.0
    f1 = step(f0, 0)
    f2 = step(f1, 1)
    for j in range(n + 1):
        tail -= (j + 1) * (f0 - 2 * f1 + f2)
        if tail <= alpha:
            return float(j)
        f0, f1, f2 = f1, f2, step(f2, j + 2)
    return float(n)


def _duplicates_bound(n: int, ref: pd.DataFrame, alpha: float) -> tuple[float, str]:
    """Most duplicated rows a window of n rows may hold. Equal pairs are rare events: the reference's
    count of equal pairs bounds (Poisson upper limit at alpha/2) the chance q that two rows are equal,
    and the window's duplicates are bounded (Poisson, alpha/2) with mean C(n, 2) q. The reference's
    own sampling noise is part of the bound, so a reference that happens to hold few pairs does not
    make a larger window fail (the window's C(n, 2) pairs can outnumber the reference's)."""
    m = len(ref)
    if m < 2 or n < 2:
        return 0.0, "too few rows"
    counts = ref.value_counts(dropna=False).to_numpy(dtype=float)
    pairs = int(np.sum(counts * (counts - 1)) / 2)
    mean = n * (n - 1) / (m * (m - 1)) * _poisson_upper_limit(pairs, alpha / 2)
    return _poisson_bound(mean, alpha / 2), f"reference: {pairs} pairs of equal rows"


@functools.lru_cache(maxsize=4096)
def _poisson_upper_limit(count: int, alpha: float) -> float:
    """The exact upper confidence limit of a Poisson mean after observing `count` events."""
    return float(chi2.ppf(1 - alpha, 2 * (count + 1)) / 2)


@functools.lru_cache(maxsize=4096)
def _binomial_bound(n: int, p: float, alpha: float) -> float:
    """The smallest k with P(X > k) <= alpha for X ~ Binomial(n, p)."""
    return float(binom.ppf(1 - alpha, n, p)) if n else 0.0


@functools.lru_cache(maxsize=4096)
def _poisson_bound(mean: float, alpha: float) -> float:
    return float(poisson.ppf(1 - alpha, mean))


def _describe(check: Check, value: float) -> str:
    what = {
        "row_count": "rows in the window",
        "missing_share": f"missing values of {check.column}",
        "value_range": f"values of {check.column} outside [{check.left:g}, {check.right:g}]"
        if check.left is not None and check.right is not None
        else "",
        "new_category": f"values of {check.column} outside the known categories",
        "constant": f"distinct values of {check.column}",
        "duplicates": "duplicated rows",
    }[check.kind]
    shown = f"{value:.2%}" if check.statistic == "share" else f"{value:g}"
    return f"{what}: {shown}"


def _bounds(check: Check) -> str:
    def fmt(bound: float) -> str:
        return f"{bound:.2%}" if check.statistic == "share" else f"{bound:g}"

    if check.low is not None and check.high is not None:
        return f"[{fmt(check.low)}, {fmt(check.high)}]"
    if check.low is not None:
        return f">= {fmt(check.low)}"
    return f"<= {fmt(check.high)}" if check.high is not None else "(no bound)"
