"""Shared by the benchmarks: a 20-column model (15 numerical, 5 categorical) and its data.

`frame(rows, seed, shifted)` draws the reference (shifted=False) or a current window in which some
columns really drifted: the first five numerical columns move by half a standard deviation or
widen, and two categorical columns change their category mix. Categories are strings, as the
service stores them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERICAL = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
COLUMNS = [*NUMERICAL, *CATEGORICAL]
MODEL = "bench"
# Category vocabularies of different sizes (3 to 12 values); > 2 values so Evidently never picks z-test.
VOCABULARIES = [[f"c{i}_{v}" for v in range(3 + 2 * i + (i > 2) * 2)] for i in range(len(CATEGORICAL))]
SHIFTED_NUMERICAL = NUMERICAL[:5]
SHIFTED_CATEGORICAL = CATEGORICAL[:2]


def frame(rows: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    """`rows` rows of the 20 columns: floats (a few NaN) and categories as Python strings."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERICAL):
        loc, scale = float(i), 1.0 + i / 10
        if shifted and name in SHIFTED_NUMERICAL:
            loc, scale = (loc + 0.5 * scale, scale) if i % 2 == 0 else (loc, scale * 1.5)
        values = rng.normal(loc, scale, rows) if i % 3 else rng.gamma(2.0 + i / 5, scale, rows) + loc
        values[rng.random(rows) < 0.01] = np.nan
        data[name] = values
    for i, name in enumerate(CATEGORICAL):
        vocabulary = np.array(VOCABULARIES[i], dtype=object)
        weights = np.linspace(1.0, 2.0, len(vocabulary))
        if shifted and name in SHIFTED_CATEGORICAL:
            weights = weights[::-1] ** 2
        data[name] = vocabulary[rng.choice(len(vocabulary), rows, p=weights / weights.sum())]
    return pd.DataFrame(data)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN becomes null, as a client would send it)."""
    out: list[dict[str, Any]] = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    return out


def model_config(reference: Path, max_rows: int, metrics: list[str] | None = None) -> dict[str, Any]:
    """The model's config mapping (schedule effectively off: benchmarks trigger calculations)."""
    return {
        "name": MODEL,
        "task": "regression",
        "reference": str(reference),
        "columns": {"numerical": NUMERICAL, "categorical": CATEGORICAL},
        "window": {"max_rows": max_rows},
        "schedule": {"every": "24h", "min_rows": 1},
        "metrics": metrics or ["data_drift", "data_quality"],
    }


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size in MB (10^6 bytes) from /proc."""
    with open(f"/proc/{pid}/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (the calculation worker and multiprocessing helpers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def best_of(fn: Any, repeat: int) -> tuple[float, Any]:
    """Minimum wall time of `repeat` calls of fn() and the last return value."""
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value
