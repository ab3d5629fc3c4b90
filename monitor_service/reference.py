"""Reference datasets: read CSV or Parquet, check them against the model's columns, normalise types.

Types follow the ingest rules in `schema.py`: numbers become float64 (NaN when missing) and
categories become strings, so reference and current values compare as equals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.errors import ConfigError
from monitor_service.schema import Kind, RowSchema

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_table(path: Path) -> pd.DataFrame:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"unsupported file type {path.suffix!r}: use .csv or .parquet")
    return reader(path)


def normalise(frame: pd.DataFrame, schema: RowSchema) -> tuple[pd.DataFrame, list[str]]:
    """Keep the schema's columns with ingest types; return the frame and the problems found."""
    problems: list[str] = []
    out: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        if spec.kind in (Kind.ID, Kind.TIMESTAMP):
            continue  # not compared: ids and times of the reference play no part in drift
        if spec.name not in frame.columns:
            if spec.required:
                problems.append(f"column {spec.name!r} is missing")
            continue
        series = frame[spec.name]
        if spec.kind is Kind.NUMERICAL:
            numbers = pd.to_numeric(series, errors="coerce")
            bad = numbers.isna() & series.notna()
            if bad.any():
                problems.append(
                    f"column {spec.name!r} should be numerical; {int(bad.sum())} value(s) are not, "
                    f"first {series[bad].iloc[0]!r}"
                )
            out[spec.name] = numbers.to_numpy(dtype=np.float64)
        else:
            out[spec.name] = _as_strings(series)
    return pd.DataFrame(out), problems


def _as_strings(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    result = np.empty(len(values), dtype=object)
    result[:] = [None if m else _plain(v) for v, m in zip(values, missing, strict=True)]
    return result


def _plain(value: object) -> str:
    """`3.0` read from a CSV with missing values is the category `3`, as ingest would send it."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_reference(model: ModelConfig, schema: RowSchema, where: str) -> pd.DataFrame:
    """Read and check a model's reference; raise ConfigError naming `where` (its path in the config)."""
    try:
        frame = read_table(model.reference)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(str(model.reference), [f"{where}: cannot read {model.reference}: {exc}"]) from exc
    normalised, problems = normalise(frame, schema)
    if not problems and normalised.empty:
        problems.append("the reference has no rows")
    if problems:
        raise ConfigError(str(model.reference), [f"{where}: {p}" for p in problems])
    return normalised
