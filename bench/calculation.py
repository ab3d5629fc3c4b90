"""Calculation wall time: the engine's two drift modes, a naive Evidently Report, and bare scipy.

For windows of 1k, 10k and 100k rows (20 columns: 15 numerical, 5 categorical; a reference of the
same size; a real shift in 5 numerical and 2 categorical columns) it times, alternating the
contenders within each repetition so machine noise hits all of them alike:

  engine   monitor_service.engine.compute, drift.mode legacy (Evidently's defaults, the behaviour
           before drift.mode existed), metrics [data_drift] (what the naive report does)
  tested   the same with drift.mode tested (the default: two-sample tests, effect sizes, missing
           share, the domain classifier included); `tested/engine` is the cost of the new verdict
  engine+q legacy with data_quality too
  naive    Report([DataDriftPreset()]).run(current, reference), Dataset.from_pandas included
  scipy    the legacy stat tests called directly (scipy + numpy/pandas counting), for context

and checks that engine, naive and scipy drift scores agree per column (max abs difference).

    python bench/calculation.py [--sizes 1000,10000,100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import CATEGORICAL, NUMERICAL, SHIFTED_CATEGORICAL, SHIFTED_NUMERICAL, frame, model_config
from scipy import stats
from scipy.spatial import distance

from monitor_service.config import ModelConfig


def naive(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """The obvious way: a DataDriftPreset report; returns {column: (method, score)}."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return _scores(snapshot)


def _scores(snapshot: Any) -> dict[str, tuple[str, float]]:
    out = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            out[config["column"]] = (config["method"], float(metric["value"]))
    return out


def bare_scipy(reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, str]) -> dict[str, float]:
    """The stat tests the engine chose, called directly on the same cleaned columns."""
    out = {}
    for column, method in methods.items():
        ref, cur = reference[column].dropna(), current[column].dropna()
        if method == "ks":
            out[column] = float(stats.ks_2samp(ref.to_numpy(), cur.to_numpy())[1])
        elif method == "wasserstein":
            r = ref.to_numpy()
            out[column] = float(stats.wasserstein_distance(r, cur.to_numpy()) / max(float(np.std(r)), 0.001))
        else:
            ref_counts, cur_counts = ref.value_counts(), cur.value_counts()
            keys = ref_counts.index.union(cur_counts.index)
            ref_n = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
            cur_n = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
            if method == "chisquare":
                out[column] = float(stats.chisquare(cur_n, ref_n * len(cur) / len(ref))[1])
            elif method == "jensenshannon":
                out[column] = float(distance.jensenshannon(ref_n / len(ref), cur_n / len(cur)))
            else:
                raise ValueError(f"bare_scipy does not implement {method!r}")
    return out


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def run_size(rows: int, repeat: int) -> dict[str, Any]:
    from monitor_service import engine

    reference = frame(rows, seed=1)
    current = frame(rows, seed=2, shifted=True)
    legacy = {"drift": {"mode": "legacy"}}
    drift_only = ModelConfig.model_validate(
        {**model_config(Path("unused.csv"), rows, ["data_drift"]), **legacy}
    )
    tested = ModelConfig.model_validate(model_config(Path("unused.csv"), rows, ["data_drift"]))
    with_quality = ModelConfig.model_validate({**model_config(Path("unused.csv"), rows), **legacy})
    times: dict[str, list[float]] = {"engine": [], "tested": [], "engine+q": [], "naive": [], "scipy": []}
    tested_result = None
    result = naive_scores = None
    methods: dict[str, str] = {}
    scipy_scores: dict[str, float] = {}
    for _ in range(repeat):
        seconds, result = _timed(lambda: engine.compute(drift_only, reference, current))
        times["engine"].append(seconds)
        seconds, tested_result = _timed(lambda: engine.compute(tested, reference, current))
        times["tested"].append(seconds)
        methods = {c.column: c.stattest for c in result.columns}
        seconds, naive_scores = _timed(lambda: naive(reference, current))
        times["naive"].append(seconds)
        seconds, _ = _timed(lambda: engine.compute(with_quality, reference, current))
        times["engine+q"].append(seconds)
        seconds, scipy_scores = _timed(lambda: bare_scipy(reference, current, methods))  # noqa: B023
        times["scipy"].append(seconds)
    assert result is not None and naive_scores is not None
    engine_scores = {c.column: c.score for c in result.columns}
    engine_methods = {c.column: c.stattest for c in result.columns}
    diff_naive = max(abs(engine_scores[c] - naive_scores[c][1]) for c in engine_scores)
    diff_scipy = max(abs(engine_scores[c] - scipy_scores[c]) for c in engine_scores)
    same_columns = set(engine_scores) == set(naive_scores)
    detected = sorted(c.column for c in result.columns if c.detected)
    assert tested_result is not None and tested_result.classifier is not None
    return {
        "tested_detected": sorted(c.column for c in tested_result.columns if c.detected),
        "classifier": (tested_result.classifier.auc, tested_result.classifier.top_columns),
        "rows": rows,
        "median": {k: statistics.median(v) for k, v in times.items()},
        "min": {k: min(v) for k, v in times.items()},
        "diff_naive": diff_naive,
        "diff_scipy": diff_scipy,
        "same_columns": same_columns,
        "methods": sorted(set(engine_methods.values())),
        "naive_methods": sorted({m for m, _ in naive_scores.values()}),
        "detected": detected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="window (= reference) sizes")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions at sizes below 100k")
    parser.add_argument("--repeat-large", type=int, default=2, help="repetitions at sizes of 100k and more")
    args = parser.parse_args()
    started = time.perf_counter()
    import evidently

    print(f"evidently {evidently.__version__}, pandas {pd.__version__}, numpy {np.__version__}")
    print(f"import evidently + engine: {time.perf_counter() - started:.2f} s")
    run_size(500, 1)  # warm up: first-call imports and caches of both code paths
    expected = sorted([*SHIFTED_NUMERICAL, *SHIFTED_CATEGORICAL])
    print(f"columns shifted on purpose: {', '.join(expected)}")
    header = (
        f"{'rows':>8} {'engine s':>9} {'tested s':>9} {'tested/engine':>13} {'engine+q s':>10} "
        + f"{'naive s':>8} {'scipy s':>8} {'engine/naive':>12} {'max|d| naive':>12} "
        + f"{'max|d| scipy':>12}  methods"
    )
    print(header)
    results = []
    for rows in (int(s) for s in args.sizes.split(",")):
        r = run_size(rows, args.repeat if rows < 100_000 else args.repeat_large)
        results.append(r)
        m = r["median"]
        print(
            f"{rows:>8} {m['engine']:>9.3f} {m['tested']:>9.3f} {m['tested'] / m['engine']:>13.2f} "
            f"{m['engine+q']:>10.3f} {m['naive']:>8.3f} {m['scipy']:>8.3f} "
            f"{m['engine'] / m['naive']:>12.3f} {r['diff_naive']:>12.2e} {r['diff_scipy']:>12.2e}  "
            f"{'/'.join(r['methods'])}"
        )
    print("\n(times are medians; best-of below)")
    for r in results:
        m = r["min"]
        print(
            f"{r['rows']:>8} engine {m['engine']:.3f} s, tested {m['tested']:.3f} s "
            f"(tested/engine {m['tested'] / m['engine']:.2f}), engine+q {m['engine+q']:.3f} s, "
            f"naive {m['naive']:.3f} s, "
            f"scipy {m['scipy']:.3f} s, engine/naive {m['engine'] / m['naive']:.3f}, "
            f"engine/scipy {m['engine'] / m['scipy']:.1f}x"
        )
    for r in results:
        print(
            f"{r['rows']:>8} rows: same columns in both {r['same_columns']}; naive methods "
            + f"{r['naive_methods']}; drift detected in {r['detected']}; "
            + f"tested mode: in {r['tested_detected']}, classifier AUC {r['classifier'][0]:.3f} "
            + f"explained by {', '.join(r['classifier'][1])}"
        )
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
