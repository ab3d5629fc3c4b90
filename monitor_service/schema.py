"""Validation of inference rows against a model's configured columns, column by column.

A batch is turned into one array per column (the layout the window stores), so the cost is one pass
over the cells; every problem is reported with its row index and column.
"""

from __future__ import annotations

import contextlib
import math
import operator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np

from monitor_service.config import ModelConfig
from monitor_service.errors import FieldError, ValidationFailed

MAX_REPORTED_ERRORS = 100
# Integers beyond this magnitude cannot be held by a float64 without overflow.
_FLOAT_LIMIT = 1.7e308


class ColumnKind(StrEnum):
    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"
    ID = "id"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    required: bool


# Distinct categories kept per column for sharing one string object per category (memory).
MAX_INTERNED = 100_000


class CategoryInterner:
    """Per categorical column, one shared string object per category, so a window of a million
    rows holds each category once rather than once per cell (about 70 bytes each). Owned by the
    model whose window holds the strings."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[Any, Any]] = {}

    def share(self, column: str, values: np.ndarray) -> np.ndarray:
        """Replace each value by the first string object seen with its value (in place)."""
        seen = self._seen.setdefault(column, {})
        if len(seen) > MAX_INTERNED:  # a high-cardinality column: stop caching rather than grow
            seen.clear()
        values[:] = list(map(seen.setdefault, values, values))
        return values


@dataclass(frozen=True)
class RowSchema:
    """What a row of one model may and must contain."""

    columns: tuple[ColumnSpec, ...]
    max_string_length: int = 1024

    @classmethod
    def from_model(cls, model: ModelConfig, max_string_length: int = 1024) -> RowSchema:
        cols = model.columns
        specs: list[ColumnSpec] = []
        if cols.id:
            specs.append(ColumnSpec(cols.id, ColumnKind.ID, required=False))
        if cols.timestamp:
            specs.append(ColumnSpec(cols.timestamp, ColumnKind.TIMESTAMP, required=False))
        label_kind = ColumnKind.NUMERICAL if model.task == "regression" else ColumnKind.CATEGORICAL
        if cols.target:
            specs.append(ColumnSpec(cols.target, label_kind, required=False))
        if isinstance(cols.prediction, str):
            specs.append(ColumnSpec(cols.prediction, label_kind, required=True))
        elif cols.prediction:
            specs.extend(ColumnSpec(name, ColumnKind.NUMERICAL, required=True) for name in cols.prediction)
        if cols.probability:
            specs.append(ColumnSpec(cols.probability, ColumnKind.NUMERICAL, required=True))
        specs.extend(ColumnSpec(name, ColumnKind.NUMERICAL, required=True) for name in cols.numerical)
        specs.extend(ColumnSpec(name, ColumnKind.CATEGORICAL, required=True) for name in cols.categorical)
        return cls(tuple(specs), max_string_length)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def kind_of(self, name: str) -> ColumnKind:
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
    def __init__(self) -> None:
        self.items: list[FieldError] = []
        self.count = 0

    def add(self, row: int, column: str | None, msg: str, kind: str, value: Any) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            loc: tuple[str | int, ...] = (
                ("body", "rows", row) if column is None else ("body", "rows", row, preview(column))
            )
            self.items.append(FieldError(loc, msg, kind, preview(value)))


def preview(value: Any) -> Any:
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


def validate_rows(
    rows: list[Any], schema: RowSchema, now: float, interner: CategoryInterner | None = None
) -> Batch:
    """Check every row; return the batch as columns, or raise ValidationFailed listing each problem.

    With an `interner`, equal categories share one string object (see CategoryInterner)."""
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
    columns: dict[str, np.ndarray] = {}
    limit = schema.max_string_length
    for spec, values in zip(schema.columns, transposed, strict=True):
        if spec.kind is ColumnKind.NUMERICAL:
            columns[spec.name] = _numbers(values, spec.name, errors)
        elif spec.kind is ColumnKind.CATEGORICAL:
            strings = _strings(values, spec.name, errors, limit, "a string, integer or boolean")
            if interner is not None and not errors.count:  # unhashable bad values must not reach it
                strings = interner.share(spec.name, strings)
            columns[spec.name] = strings
        elif spec.kind is ColumnKind.ID:
            columns[spec.name] = _strings(
                values, spec.name, errors, limit, "a string or integer", allow_bool=False
            )
        else:
            columns[spec.name] = _timestamps(values, spec.name, errors, now)
    if errors.count:
        raise ValidationFailed(errors.items, errors.count, len(rows))
    return Batch(columns, len(rows))


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
    if schema.kind_of(target) is ColumnKind.NUMERICAL:
        targets = _numbers(values, "target", errors)
    else:
        targets = _strings(values, "target", errors, limit, "a string, integer or boolean")
    if errors.count:
        raise ValidationFailed(_relabel(errors.items), errors.count, len(items))
    return list(ids), targets


def _relabel(items: list[FieldError]) -> list[FieldError]:
    """Errors of a labels body point into `labels`, not `rows`."""
    return [FieldError(("body", "labels", *e.loc[2:]), e.msg, e.type, e.input) for e in items]
