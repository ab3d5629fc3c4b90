"""Validation of inference rows against a model's configured columns, column by column.

A batch is turned into one array per column (the layout the window stores), so the cost is one pass
over the cells; every problem is reported with its row index and column.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor_service.config import ModelConfig
from monitor_service.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from monitor_service.rowcodec import RowCodec

MAX_REPORTED_ERRORS = 100
# Integers beyond this magnitude cannot be held by a float64 without overflow.
_FLOAT_LIMIT = 1.7e308


class Kind(StrEnum):
    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"
    ID = "id"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    required: bool


# Distinct categories kept per column for sharing one string object per category (memory).
MAX_INTERNED = 100_000


@dataclass(frozen=True)
class RowSchema:
    """What a row of one model may and must contain."""

    columns: tuple[ColumnSpec, ...]
    max_string_length: int = 1024
    # Per categorical column: category -> its one shared string object (see _strings).
    categories: dict[str, dict[Any, Any]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_model(cls, model: ModelConfig, max_string_length: int = 1024) -> RowSchema:
        cols = model.columns
        specs: list[ColumnSpec] = []
        if cols.id:
            specs.append(ColumnSpec(cols.id, Kind.ID, required=False))
        if cols.timestamp:
            specs.append(ColumnSpec(cols.timestamp, Kind.TIMESTAMP, required=False))
        label_kind = Kind.NUMERICAL if model.task == "regression" else Kind.CATEGORICAL
        if cols.target:
            specs.append(ColumnSpec(cols.target, label_kind, required=False))
        if isinstance(cols.prediction, str):
            specs.append(ColumnSpec(cols.prediction, label_kind, required=True))
        elif cols.prediction:
            specs.extend(ColumnSpec(name, Kind.NUMERICAL, required=True) for name in cols.prediction)
        if cols.probability:
            specs.append(ColumnSpec(cols.probability, Kind.NUMERICAL, required=True))
        specs.extend(ColumnSpec(name, Kind.NUMERICAL, required=True) for name in cols.numerical)
        specs.extend(ColumnSpec(name, Kind.CATEGORICAL, required=True) for name in cols.categorical)
        return cls(tuple(specs), max_string_length)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @functools.cached_property
    def codec(self) -> RowCodec:
        """The model's one-pass decoder of row bodies (built on first use)."""
        from monitor_service.rowcodec import RowCodec

        return RowCodec(self)

    def kind_of(self, name: str) -> Kind:
        for column in self.columns:
            if column.name == name:
                return column.kind
        raise ValidationFailed([FieldError(("body",), f"the model has no column {name!r}", "value_error")])


@dataclass(frozen=True)
class Batch:
    """Validated rows as one array per column: float64 for numbers (NaN when null), object otherwise."""

    columns: dict[str, np.ndarray]
    rows: int


class _Errors:
    """Problems found, in FastAPI's error shape; at most MAX_REPORTED_ERRORS kept, all counted.

    Cell locations are `("body", "rows", row, column)` for row bodies and `("body", "columns",
    column, row)` for columnar ones, so each points into the body as it was sent."""

    def __init__(self, columnar: bool = False) -> None:
        self.items: list[FieldError] = []
        self.count = 0
        self.columnar = columnar

    def add(self, row: int, column: str | None, msg: str, kind: str, value: Any) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            loc: tuple[str | int, ...]
            if column is None:
                loc = ("body", "rows", row)
            elif self.columnar:
                loc = ("body", "columns", _preview(column), row)
            else:
                loc = ("body", "rows", row, _preview(column))
            self.items.append(FieldError(loc, msg, kind, _preview(value)))

    def add_column(self, column: str, msg: str, kind: str, value: Any = None) -> None:
        """A problem with a whole column of a columnar body."""
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(FieldError(("body", "columns", _preview(column)), msg, kind, _preview(value)))


def _preview(value: Any) -> Any:
    """Echo short inputs back as they were; never echo a huge string or structure."""
    if isinstance(value, str) and len(value) > 64:
        return value[:64] + "..."
    if isinstance(value, dict | list):
        return f"<{type(value).__name__} of {len(value)}>"
    return value


_NUMBER_TYPES = frozenset({float, int, type(None)})
_STRING_TYPES = frozenset({str, type(None)})


def _numbers(values: list[Any], name: str, errors: _Errors) -> np.ndarray:
    if _NUMBER_TYPES.issuperset(map(type, values)):
        # Fast path, vectorised: None becomes NaN; only non-finite or huge values need the slow loop.
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            array = None
        # Every non-null value finite: the NaNs in the array are exactly the Nones.
        if array is not None and np.count_nonzero(np.isfinite(array)) == len(values) - values.count(None):
            return array
    for i, v in enumerate(values):
        t = type(v)
        if t is float:
            if not math.isfinite(v):
                errors.add(i, name, "Input should be a finite number", "finite_number", str(v))
        elif t is int:
            if not -_FLOAT_LIMIT < v < _FLOAT_LIMIT:
                errors.add(i, name, "Number is too large", "number_too_large", str(v)[:32])
        elif v is not None:
            errors.add(i, name, "Input should be a number or null", "float_type", v)
    if errors.count:
        return np.empty(0)
    return np.array(values, dtype=np.float64)


def _strings(
    values: list[Any], name: str, errors: _Errors, limit: int, what: str, *, allow_bool: bool = True
) -> np.ndarray:
    """Strings (ids, categories) as an object array: integers (and, where allowed, booleans as
    "true"/"false") become strings; longer than `limit` characters or any other type is an error."""
    fast = _STRING_TYPES.issuperset(map(type, values))
    if fast and max(map(len, filter(None, values)), default=0) <= limit:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    out: list[Any] = values
    for i, v in enumerate(values):
        t = type(v)
        if t is str:
            if len(v) > limit:
                errors.add(i, name, f"String should have at most {limit} characters", "string_too_long", v)
        elif t is int or (t is bool and allow_bool):
            if out is values:
                out = list(values)
            out[i] = str(v).lower() if t is bool else str(v)
        elif v is not None:
            errors.add(i, name, f"Input should be {what} or null", "string_type", v)
    array = np.empty(len(out), dtype=object)
    array[:] = out
    return array


def _share(values: np.ndarray, seen: dict[Any, Any]) -> np.ndarray:
    """Replace each category by the first string object seen with its value, so a window of a
    million rows holds each category once rather than once per cell (about 70 bytes each)."""
    if len(seen) > MAX_INTERNED:  # a high-cardinality column: stop caching rather than grow
        seen.clear()
    values[:] = list(map(seen.setdefault, values, values))
    return values


# The JSON types a category may arrive as (RowCodec's fast decoder accepts exactly these; keep
# both in step when category normalisation changes).
CATEGORY_TYPES: tuple[type, ...] = (str, int, bool)


def categories(
    values: list[Any],
    name: str,
    errors: _Errors,
    limit: int,
    seen: dict[Any, Any],
    *,
    lengths_checked: bool = False,
) -> np.ndarray:
    """A categorical column: every value normalised to its category string (see `_strings`), each
    category one shared string object (`_share`), or errors. The one place categories are read.

    `lengths_checked`: the caller already refused strings longer than `limit`."""
    if _STRING_TYPES.issuperset(map(type, values)) and (
        lengths_checked or max(map(len, filter(None, values)), default=0) <= limit
    ):
        if len(seen) > MAX_INTERNED:
            seen.clear()
        array = np.empty(len(values), dtype=object)
        array[:] = list(map(seen.setdefault, values, values))  # the usual case, in one pass
        return array
    strings = _strings(values, name, errors, limit, "a string, integer or boolean")
    if not errors.count:  # unhashable bad values must not reach the category table
        strings = _share(strings, seen)
    return strings


def _timestamps(values: list[Any], name: str, errors: _Errors, now: float) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        t = type(v)
        if v is None:
            out[i] = now
        elif (t is float or t is int) and 0 <= v < 1e11:
            out[i] = v
        elif t is str:
            try:
                stamp = datetime.fromisoformat(v).timestamp()
            except (ValueError, OverflowError, OSError):  # unparsable, or beyond what a clock holds
                stamp = -1.0
            if not 0 <= stamp < 1e11:
                errors.add(
                    i,
                    name,
                    "Input should be an ISO 8601 datetime or Unix seconds after 1970",
                    "datetime_parsing",
                    v,
                )
                continue
            out[i] = stamp
        else:
            errors.add(i, name, "Input should be an ISO 8601 datetime or Unix seconds", "datetime_type", v)
    return out


def _transpose(rows: list[dict[str, Any]], schema: RowSchema) -> list[list[Any]]:
    """Column lists in schema order; required columns are read in C (itemgetter and zip)."""
    required = [c.name for c in schema.columns if c.required]
    by_name: dict[str, list[Any]] = {}
    if len(required) > 1 and rows:
        tuples = map(operator.itemgetter(*required), rows)  # raises KeyError when one is missing
        by_name = dict(zip(required, map(list, zip(*tuples, strict=True)), strict=True))
    elif required:
        by_name = {name: [row[name] for row in rows] for name in required}
    return [
        by_name[c.name] if c.name in by_name else [row.get(c.name) for row in rows] for c in schema.columns
    ]


def validate_rows(rows: list[Any], schema: RowSchema, now: float) -> Batch:
    """Check every row; return the batch as columns, or raise ValidationFailed listing each problem."""
    errors = _Errors()
    allowed = set(schema.names)
    for i, row in enumerate(rows):
        if type(row) is not dict:
            errors.add(i, None, "Each row should be a JSON object", "dict_type", row)
        elif not allowed.issuperset(row):
            for key in sorted(set(row) - allowed):
                errors.add(i, key, "Unknown column", "extra_forbidden", row[key])
    transposed: list[list[Any]] | None = None
    if not errors.count:
        with contextlib.suppress(KeyError):  # a required column is missing: found below
            transposed = _transpose(rows, schema)
    if transposed is None:
        required = {c.name for c in schema.columns if c.required}
        for i, row in enumerate(rows):
            for key in sorted(required - set(row)) if type(row) is dict else ():
                errors.add(i, key, "Field required", "missing", None)
    if errors.count or transposed is None:
        raise ValidationFailed(errors.items, errors.count, len(rows))
    return _check_columns(transposed, len(rows), schema, now, errors)


def validate_columns(columns: Any, schema: RowSchema, now: float) -> Batch:
    """Check a columnar body's `columns` object (`{name: [value per row]}`) with the same rules as
    rows: every configured column that is required present, no unknown ones, all of one length."""
    errors = _Errors(columnar=True)
    if type(columns) is not dict:
        raise ValidationFailed(
            [FieldError(("body", "columns"), "`columns` should be an object of lists", "dict_type", None)]
        )
    allowed = set(schema.names)
    for name in sorted(set(columns) - allowed):
        errors.add_column(name, "Unknown column", "extra_forbidden")
    lengths: dict[str, int] = {}
    for spec in schema.columns:
        values = columns.get(spec.name)
        if values is None:
            if spec.required:
                errors.add_column(spec.name, "Field required", "missing")
        elif type(values) is not list:
            errors.add_column(spec.name, "Each column should be a list of values", "list_type", values)
        else:
            lengths[spec.name] = len(values)
    counts = Counter(lengths.values())
    rows = counts.most_common(1)[0][0] if counts else 0
    for name, length in lengths.items():
        if length != rows:
            errors.add_column(
                name, f"All columns should have the same length: {length}, not {rows}", "length"
            )
    if errors.count:
        raise ValidationFailed(errors.items, errors.count)
    transposed = [columns.get(spec.name) or [None] * rows for spec in schema.columns]
    return _check_columns(transposed, rows, schema, now, errors)


def _check_columns(
    transposed: list[list[Any]], rows: int, schema: RowSchema, now: float, errors: _Errors
) -> Batch:
    """The values of each column (in schema order) checked and converted; raises ValidationFailed."""
    columns: dict[str, np.ndarray] = {}
    limit = schema.max_string_length
    for spec, values in zip(schema.columns, transposed, strict=True):
        if spec.kind is Kind.NUMERICAL:
            columns[spec.name] = _numbers(values, spec.name, errors)
        elif spec.kind is Kind.CATEGORICAL:
            columns[spec.name] = categories(
                values, spec.name, errors, limit, schema.categories.setdefault(spec.name, {})
            )
        elif spec.kind is Kind.ID:
            columns[spec.name] = _strings(
                values, spec.name, errors, limit, "a string or integer", allow_bool=False
            )
        else:
            columns[spec.name] = _timestamps(values, spec.name, errors, now)
    if errors.count:
        raise ValidationFailed(errors.items, errors.count, rows)
    return Batch(columns, rows)


def validate_labels(items: list[Any], schema: RowSchema, target: str) -> tuple[list[str], np.ndarray]:
    """Check `[{"id": ..., "target": ...}]`; return ids and targets typed like the target column."""
    errors = _Errors()
    for i, item in enumerate(items):
        if type(item) is not dict:
            errors.add(i, None, "Each label should be an object with `id` and `target`", "dict_type", item)
            continue
        for key in sorted(set(item) - {"id", "target"}):
            errors.add(i, key, "Unknown field", "extra_forbidden", item[key])
        for key in ("id", "target"):
            if item.get(key) is None:
                errors.add(i, key, "Field required (not null)", "missing", None)
    if errors.count:
        raise ValidationFailed(_relabel(errors.items), errors.count, len(items))
    limit = schema.max_string_length
    ids = _strings(
        [item["id"] for item in items], "id", errors, limit, "a string or integer", allow_bool=False
    )
    values = [item["target"] for item in items]
    if schema.kind_of(target) is Kind.NUMERICAL:
        targets = _numbers(values, "target", errors)
    else:
        targets = _strings(values, "target", errors, limit, "a string, integer or boolean")
    if errors.count:
        raise ValidationFailed(_relabel(errors.items), errors.count, len(items))
    return list(ids), targets


def _relabel(items: list[FieldError]) -> list[FieldError]:
    """Errors of a labels body point into `labels`, not `rows`."""
    return [FieldError(("body", "labels", *e.loc[2:]), e.msg, e.type, e.input) for e in items]
