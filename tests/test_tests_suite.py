"""The test suite: calibrated bounds, verdicts on clean and broken windows, agreement with Evidently."""

from __future__ import annotations

import itertools
from math import comb
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently.core.report import Snapshot
from scipy.stats import hypergeom

from monitor_service import engine
from monitor_service.config import ModelConfig
from monitor_service.engine.snapshot import _tests_report
from monitor_service.engine.tests_suite import (
    _missing_bound,
    _range_bound,
    plan_tests,
    run_tests,
)
from monitor_service.results import TestOutcome
from tests.conftest import diamonds_model, rows_of
from tests.support.frames import frames


def _model(**overrides: Any) -> ModelConfig:
    return ModelConfig.model_validate(diamonds_model(**overrides))


def _by_name(outcomes: tuple[TestOutcome, ...]) -> dict[str, TestOutcome]:
    return {o.name: o for o in outcomes}


def _broken_rows(count: int) -> list[dict[str, Any]]:
    """Production rows with one problem per auto test kind."""
    rows = rows_of("production", count)
    for row in rows[:40]:
        row["carat"] = None  # missing values
    for row in rows[40:80]:
        row["depth"] = 99.0  # far outside the reference's range
    for row in rows[80:120]:
        row["cut"] = "Unknown"  # a category the reference never had
    for row in rows:
        row["table"] = 57.0  # constant
    rows.extend(dict(row, request_id=f"dup-{i}") for i, row in enumerate(rows[200:260]))  # duplicates
    return rows


def test_range_bound_matches_the_exact_distribution_by_enumeration() -> None:
    # All orderings of n window and m reference values: K counts window values beyond the
    # reference's minimum and maximum.
    n, m = 4, 3
    counts: dict[int, int] = {}
    for positions in itertools.combinations(range(n + m), m):  # where the reference values sit
        low, high = positions[0], positions[-1]
        k = low + (n + m - 1 - high)
        counts[k] = counts.get(k, 0) + 1
    total = comb(n + m, m)
    for alpha in (0.5, 0.2, 0.05, 0.01):
        bound = _range_bound(n, m, alpha)
        tail = sum(c for k, c in counts.items() if k > bound) / total
        assert tail <= alpha + 1e-12
        if bound > 0:
            assert sum(c for k, c in counts.items() if k > bound - 1) / total > alpha


@pytest.mark.parametrize(("n", "m", "missing"), [(200, 10_000, 0), (5000, 10_000, 30), (1000, 500, 100)])
def test_missing_bound_is_the_last_count_the_fisher_test_accepts(n: int, m: int, missing: int) -> None:
    alpha = 0.001
    bound = int(_missing_bound(n, m, missing, alpha))
    assert hypergeom.sf(bound - 1, n + m, missing + bound, n) >= alpha
    assert hypergeom.sf(bound, n + m, missing + bound + 1, n) < alpha


def test_suite_passes_windows_without_drift_and_fails_drifted_ones_only_where_broken() -> None:
    model = _model()
    reference, current = frames(model, rows_of("production", 3000))
    outcomes = run_tests(model, reference, current)
    assert outcomes, "the auto suite is on by default"
    assert {o.status for o in outcomes} <= {"pass", "skip"}
    assert {o.kind for o in outcomes} == {
        "row_count",
        "missing_share",
        "value_range",
        "new_category",
        "constant",
        "duplicates",
    }
    assert all(not o.critical for o in outcomes)  # nothing is critical unless configured


def test_suite_fails_each_kind_of_problem_by_name() -> None:
    model = _model()
    reference, current = frames(model, _broken_rows(2000))
    tests = _by_name(run_tests(model, reference, current))
    failed = {name for name, t in tests.items() if t.status == "fail"}
    assert failed == {
        "missing_share:carat",
        "value_range:depth",
        "new_category:cut",
        "constant:table",
        "duplicates",
    }
    assert tests["missing_share:carat"].value == 40
    assert tests["value_range:depth"].value == 40
    assert tests["new_category:cut"].value == 40
    assert tests["constant:table"].value == 1
    assert tests["duplicates"].value == 60
    assert "outside" in tests["value_range:depth"].description


def test_suite_marks_configured_kinds_critical_and_leaves_out_excluded_tests() -> None:
    model = _model(tests={"critical": ["missing_share"], "exclude": ["constant", "value_range:depth"]})
    reference, current = frames(model, _broken_rows(500))
    tests = _by_name(run_tests(model, reference, current))
    assert tests["missing_share:carat"].critical and tests["missing_share:carat"].status == "fail"
    assert not tests["duplicates"].critical
    assert not any(name.startswith("constant:") for name in tests)
    assert "value_range:depth" not in tests
    assert "value_range:carat" in tests


def test_suite_runs_custom_tests_from_the_config() -> None:
    custom = [
        {"name": "enough_rows", "kind": "row_count", "min": 1000, "critical": True},
        {"name": "carat_known", "kind": "missing_share", "column": "carat", "max_share": 0.01},
        {
            "name": "depth_sane",
            "kind": "value_range",
            "column": "depth",
            "min": 40,
            "max": 80,
            "max_share": 0.05,
        },
        {"name": "cut_listed", "kind": "new_category", "column": "cut", "values": ["Ideal", "Premium"]},
        {"name": "few_duplicates", "kind": "duplicates", "max_share": 0.2},
        {"name": "table_varies", "kind": "constant", "column": "table"},
    ]
    model = _model(tests={"auto": False, "custom": custom})
    reference, current = frames(model, _broken_rows(500))
    tests = _by_name(run_tests(model, reference, current))
    assert set(tests) == {c["name"] for c in custom}
    assert tests["enough_rows"].status == "fail" and tests["enough_rows"].critical
    assert tests["carat_known"].status == "fail"  # 40 of 560 rows
    assert tests["depth_sane"].status == "fail"  # 40 of 560 values at 99
    assert tests["cut_listed"].status == "fail"
    assert tests["few_duplicates"].status == "pass"  # 60 of 560
    assert tests["table_varies"].status == "fail"


def test_suite_is_off_when_neither_auto_nor_custom() -> None:
    model = _model(tests={"auto": False})
    reference, current = frames(model, rows_of("production", 300))
    assert run_tests(model, reference, current) == ()


def test_suite_skips_a_constant_test_a_small_window_could_fail_by_chance() -> None:
    model = _model()
    reference, current = frames(model, rows_of("production", 5))
    tests = _by_name(run_tests(model, reference, current))
    assert tests["constant:cut"].status == "skip"  # five rows of five cuts are often all alike
    assert "not rare" in tests["constant:cut"].description
    assert tests["constant:carat"].status in {"pass", "fail"}


def test_engine_result_carries_the_tests() -> None:
    model = _model()
    reference, current = frames(model, _broken_rows(500))
    result = engine.compute(model, reference, current)
    assert {t.name for t in result.failed_tests} >= {"missing_share:carat", "constant:table"}


def _evidently_statuses(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, str]:
    checks = [c for c in plan_tests(model, reference, current) if c.skip is None]
    snapshot = Snapshot.load_model(_tests_report(model, checks, reference, current).to_snapshot_model())
    return {t.description.split(": ")[0]: t.status.value for t in snapshot.tests_results}


@pytest.mark.parametrize("window", ["clean", "broken", "drifted", "custom"])
def test_suite_verdicts_equal_evidently_tests_on_the_same_conditions(window: str) -> None:
    overrides: dict[str, Any] = {"tests": {"critical": ["missing_share", "constant"]}}
    rows = rows_of("production", 1500)
    if window == "broken":
        rows = _broken_rows(1500)
    elif window == "drifted":
        rows = rows_of("drifted", 1500)
    elif window == "custom":
        rows = _broken_rows(700)
        overrides = {
            "tests": {
                "custom": [
                    {"name": "rows", "kind": "row_count", "min": 100, "max": 600},
                    {"name": "carat_nulls", "kind": "missing_share", "column": "carat", "max_share": 0.0714},
                    {
                        "name": "depth",
                        "kind": "value_range",
                        "column": "depth",
                        "min": 50,
                        "max": 70,
                        "max_share": 0.05,
                        "critical": True,
                    },
                    {
                        "name": "cuts",
                        "kind": "new_category",
                        "column": "cut",
                        "values": ["Ideal", "Premium", "Good"],
                        "max_share": 0.3,
                    },
                    {"name": "dups", "kind": "duplicates", "max_share": 0.0789},
                    {"name": "table", "kind": "constant", "column": "table"},
                ]
            }
        }
    model = _model(**overrides)
    reference, current = frames(model, rows)
    ours = {t.name: t for t in run_tests(model, reference, current) if t.status != "skip"}
    theirs = _evidently_statuses(model, reference, current)
    assert set(ours) == set(theirs)
    for name, outcome in ours.items():
        expected = "SUCCESS" if outcome.status == "pass" else ("FAIL" if outcome.critical else "WARNING")
        assert theirs[name] == expected, (name, outcome)
    if window in {"broken", "custom"}:
        assert any(t.status == "fail" for t in ours.values())


def test_suite_handles_a_column_without_values_in_the_window() -> None:
    model = _model()
    rows = rows_of("production", 300)
    for row in rows:
        row["x"] = None
    reference, current = frames(model, rows)
    tests = _by_name(run_tests(model, reference, current))
    assert tests["missing_share:x"].status == "fail"
    assert tests["constant:x"].status == "skip"
    assert tests["value_range:x"].status == "pass" and tests["value_range:x"].value == 0
    assert np.isfinite([t.value for t in tests.values() if t.value is not None]).all()
