"""Reference datasets: read CSV or Parquet, check them against the model's columns, normalise values.

Values follow the ingest rules exactly: numbers become float64 (NaN when missing); categories are
normalised by `values.category` (a CSV's categorical columns are read as text, so `012` keeps its
zero and `TRUE` is the boolean true); and every column passes its contract as live rows do. Each
problem names the rows where it occurs (the lines, in a CSV file).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyarrow.lib import ArrowException

from monitor_service import contracts
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
from monitor_service.values import category_column

CSV_FIRST_LINE = 2  # the line of a CSV file's first row, after the header
SHOWN_ROWS = 5


def read_table(path: Path, schema: RowSchema | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, schema)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"unsupported file type {path.suffix!r}: use .csv or .parquet")


def read_csv(source: Path | IO[bytes], schema: RowSchema | None, nrows: int | None = None) -> pd.DataFrame:
    """A CSV with the schema's categorical columns read as text (pandas would make `012` the number 12)."""
    text = {} if schema is None else {c.name: str for c in schema.columns if c.kind is ColumnKind.CATEGORICAL}
    return pd.read_csv(source, dtype=text, nrows=nrows)


@dataclass(frozen=True)
class ReferenceCheck:
    """A reference after its checks: the normalised frame, refusals (column, message), notes."""

    frame: pd.DataFrame
    problems: list[tuple[str, str]]
    notes: list[str]
    file_columns: list[str]


def inspect(frame: pd.DataFrame, schema: RowSchema, *, first_line: int | None = None) -> ReferenceCheck:
    """Keep the schema's columns with ingest types and contracts; `first_line`: CSV line of row 0."""
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    out: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        if spec.kind in (ColumnKind.ID, ColumnKind.TIMESTAMP):
            continue  # not compared: ids and times of the reference play no part in drift
        name = spec.name
        if name not in frame.columns:
            if spec.required:
                problems.append((name, f"column {name!r} is missing"))
            continue
        rules = schema.rules_of(name)
        series = frame[name]
        if spec.kind is ColumnKind.NUMERICAL:
            numbers = pd.to_numeric(series, errors="coerce")
            bad = np.flatnonzero((numbers.isna() & series.notna()).to_numpy())
            if bad.size:
                first = series.iloc[bad[0]]
                where = _where(bad, first_line)
                message = (
                    f"should be numerical; {bad.size} value(s) are not, at {where} (first {_shown(first)})"
                )
                problems.append((name, f"column {name!r} {message}"))
            checked = contracts.check_numbers(numbers.to_numpy(dtype=np.float64), rules)
        else:
            raw = [None if missing else v for v, missing in zip(series, series.isna(), strict=True)]
            categories, refused = category_column(raw, {}, sys.maxsize, normalise=rules.normalise)
            if refused:
                _, why, _, value = refused[0]
                rows = np.array([r[0] for r in refused])
                where = _where(rows, first_line)
                problems.append(
                    (
                        name,
                        f"column {name!r}: {rows.size} value(s) are not categories, at {where} "
                        f"(first {_shown(value)}: {why})",
                    )
                )
            checked = contracts.check_categories(categories, rules)
        out[name] = checked.values
        _describe(checked, rules, series, first_line, problems, notes)
    return ReferenceCheck(pd.DataFrame(out), problems, notes, [str(c) for c in frame.columns])


def _describe(
    checked: contracts.Checked,
    rules: contracts.ColumnRules,
    series: pd.Series,
    first_line: int | None,
    problems: list[tuple[str, str]],
    notes: list[str],
) -> None:
    name = rules.column
    by_reason: dict[str, list[int]] = {}
    for row in checked.violations.tolist():
        by_reason.setdefault(contracts.reason(rules, series.iloc[row]), []).append(row)
    for reason, rows in by_reason.items():
        first = series.iloc[rows[0]]
        text = (
            f"column {name!r}: {len(rows)} value(s) {reason} at {_where(np.array(rows), first_line)} "
            f"(first {_shown(first)})"
        )
        if rules.action == "reject":
            problems.append((name, text))
        else:
            notes.append(text + (" stored as null" if rules.action == "nullify" else " kept"))
    if checked.missing_codes:
        notes.append(f"column {name!r}: {checked.missing_codes} missing-value code(s) stored as null")


def _shown(value: Any) -> str:
    """A value as the file holds it: `12.5`, `'Superb'` (not `np.float64(12.5)`)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _where(rows: np.ndarray, first_line: int | None) -> str:
    """`lines 7, 8`, or `row 2` (1 is the first row) when the rows have no lines."""
    word, base = ("line", first_line) if first_line is not None else ("row", 1)
    shown = ", ".join(str(int(r) + base) for r in rows[:SHOWN_ROWS])
    more = f" and {rows.size - SHOWN_ROWS} more" if rows.size > SHOWN_ROWS else ""
    return f"{word}{'s' if rows.size > 1 else ''} {shown}{more}"


def normalise(
    frame: pd.DataFrame, schema: RowSchema, *, first_line: int | None = None
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Keep the schema's columns with ingest types; return the frame and (column, problem) pairs."""
    check = inspect(frame, schema, first_line=first_line)
    return check.frame, check.problems


def check_file(model: ModelConfig, schema: RowSchema, where: str) -> ReferenceCheck:
    """Read and check a model's reference file; ConfigError naming `where` when it cannot be read."""
    try:
        frame = read_table(model.reference, schema)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(str(model.reference), [f"{where}: cannot read {model.reference}: {exc}"]) from exc
    csv = model.reference.suffix.lower() == ".csv"
    check = inspect(frame, schema, first_line=CSV_FIRST_LINE if csv else None)
    if not check.problems and check.frame.empty:
        check.problems.append(("", "the reference has no rows"))
    return check


def load_reference(model: ModelConfig, schema: RowSchema, where: str) -> pd.DataFrame:
    """Read and check a model's reference; raise ConfigError naming `where` (its path in the config)."""
    check = check_file(model, schema, where)
    if check.problems:
        raise ConfigError(str(model.reference), [f"{where}: {message}" for _, message in check.problems])
    return check.frame


def checked(
    frame: pd.DataFrame, schema: RowSchema, *, first_line: int | None = None
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """`normalise`, plus the problem of a reference without rows."""
    normalised, problems = normalise(frame, schema, first_line=first_line)
    if not problems and normalised.empty:
        problems.append(("", "the reference has no rows"))
    return normalised, problems


def _json_frame(rows: list[Any]) -> pd.DataFrame:
    """Rows as columns of objects: JSON numbers stay exact (pandas would round 12345678901234567)."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    return pd.DataFrame({n: pd.Series([row.get(n) for row in rows], dtype=object) for n in names})


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
    ValidationFailed naming each bad column (with the CSV lines where values are wrong).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        first_line = None
        if media == "text/csv":
            frame = read_csv(io.BytesIO(body), schema, nrows=max_rows + 1)
            if len(frame) > max_rows:
                raise _too_many(len(frame), max_rows)
            first_line = CSV_FIRST_LINE
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
            frame = _json_frame(rows)
        else:
            raise UnsupportedMediaType(
                f"unsupported content type {media or '(none)'!r}: send text/csv, "
                "application/vnd.apache.parquet or application/json"
            )
    except (ValueError, TypeError, OSError, pd.errors.ParserError, ArrowException) as exc:
        raise BadRequest(f"cannot read the reference: {exc}") from exc
    normalised, problems = checked(frame, schema, first_line=first_line)
    if problems:
        raise ValidationFailed(
            [
                FieldError(("body", column) if column else ("body",), message, "value_error", None)
                for column, message in problems
            ]
        )
    return normalised
