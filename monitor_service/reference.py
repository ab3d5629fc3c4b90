"""Reference datasets: read CSV or Parquet, check them against the model's columns, normalise types.

Types follow the ingest rules in `schema.py`: numbers become float64 (NaN when missing) and
categories become strings, so reference and current values compare as equals.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyarrow.lib import ArrowException

from monitor_service.config import ModelConfig
from monitor_service.errors import (
    BadRequest,
    ConfigError,
    FieldError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from monitor_service.payload import parse_items
from monitor_service.schema import ColumnKind, RowSchema


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"unsupported file type {path.suffix!r}: use .csv or .parquet")


def normalise(frame: pd.DataFrame, schema: RowSchema) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Keep the schema's columns with ingest types; return the frame and (column, problem) pairs."""
    problems: list[tuple[str, str]] = []
    out: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        if spec.kind in (ColumnKind.ID, ColumnKind.TIMESTAMP):
            continue  # not compared: ids and times of the reference play no part in drift
        if spec.name not in frame.columns:
            if spec.required:
                problems.append((spec.name, f"column {spec.name!r} is missing"))
            continue
        series = frame[spec.name]
        if spec.kind is ColumnKind.NUMERICAL:
            numbers = pd.to_numeric(series, errors="coerce")
            bad = numbers.isna() & series.notna()
            if bad.any():
                first = series[bad].iloc[0]
                message = f"should be numerical; {int(bad.sum())} value(s) are not, first {first!r}"
                problems.append((spec.name, f"column {spec.name!r} {message}"))
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
    normalised, problems = checked(frame, schema)
    if problems:
        raise ConfigError(str(model.reference), [f"{where}: {message}" for _, message in problems])
    return normalised


def checked(frame: pd.DataFrame, schema: RowSchema) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """`normalise`, plus the problem of a reference without rows."""
    normalised, problems = normalise(frame, schema)
    if not problems and normalised.empty:
        problems.append(("", "the reference has no rows"))
    return normalised, problems


PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/octet-stream")


def _too_many(rows: int, max_rows: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the reference has more than {max_rows} rows (server.max_reference_rows)",
        "too_many_rows",
        row_count=rows,
    )


def _read_parquet(body: bytes, schema: RowSchema, max_rows: int) -> pd.DataFrame:
    """Only the model's columns, and nothing at all when the file says it has too many rows (a
    small, well-compressed file can expand to millions of rows)."""
    parquet = pq.ParquetFile(io.BytesIO(body))
    if parquet.metadata.num_rows > max_rows:
        raise _too_many(parquet.metadata.num_rows, max_rows)
    present = set(parquet.schema_arrow.names)
    frame: pd.DataFrame = parquet.read(columns=[n for n in schema.names if n in present]).to_pandas()
    return frame


def parse_reference(body: bytes, content_type: str, schema: RowSchema, max_rows: int) -> pd.DataFrame:
    """A reference sent over HTTP (CSV, Parquet, or JSON `{"rows": [...]}`), checked like a file.

    Raises BadRequest for unreadable bodies, PayloadTooLarge beyond `max_rows` rows, and
    ValidationFailed naming each bad column.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        if media == "text/csv":
            frame = pd.read_csv(io.BytesIO(body), nrows=max_rows + 1)
            if len(frame) > max_rows:
                raise _too_many(len(frame), max_rows)
        elif media in PARQUET_TYPES:
            frame = _read_parquet(body, schema, max_rows)
        elif media == "application/json":
            rows = parse_items(body, ndjson=False, key="rows")
            if len(rows) > max_rows:
                raise _too_many(len(rows), max_rows)
            bad = [
                FieldError(("body", "rows", i), "Each row should be a JSON object", "dict_type", None)
                for i, row in enumerate(rows)
                if type(row) is not dict
            ]
            if bad:
                raise ValidationFailed(bad[:100], total_errors=len(bad))
            frame = pd.DataFrame.from_records(rows)
        else:
            raise UnsupportedMediaType(
                f"unsupported content type {media or '(none)'!r}: send text/csv, "
                "application/vnd.apache.parquet or application/json"
            )
    except (ValueError, TypeError, OSError, pd.errors.ParserError, ArrowException) as exc:
        raise BadRequest(f"cannot read the reference: {exc}") from exc
    normalised, problems = checked(frame, schema)
    if problems:
        raise ValidationFailed(
            [
                FieldError(("body", column) if column else ("body",), message, "value_error", None)
                for column, message in problems
            ]
        )
    return normalised
