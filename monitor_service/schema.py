"""Validation of inference rows against a model's configured columns, column by column.

A batch is turned into one array per column (the layout the window stores), so the cost is one pass
over the cells; every problem is reported with its row index and column. Categories are normalised
by `values.category_column`, event times read by `timestamps.event_times`, and every numerical and
categorical column then passes its contract (`contracts`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor_service import contracts
from monitor_service.config import ModelConfig
from monitor_service.config_checks import value_kinds
from monitor_service.contracts import ColumnRules, ContractCounts, Tally
from monitor_service.errors import FieldError, ValidationFailed
from monitor_service.timestamps import TimestampPolicy, event_times
from monitor_service.values import Problem, category_column

if TYPE_CHECKING:
    from monitor_service.rowcodec import RowCodec

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


class CategoryInterner:
    """Per categorical column, the table of raw value -> category that `values.category_column`
    keeps: known values cost one lookup, and a window of a million rows holds each category once
    rather than once per cell (about 70 bytes each). Owned by the model whose window holds them."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[Any, Any]] = {}

    def table(self, column: str) -> dict[Any, Any]:
        return self._tables.setdefault(column, {})


@dataclass(frozen=True)
class RowSchema:
    """What a row of one model may and must contain."""

    columns: tuple[ColumnSpec, ...]
    max_string_length: int = 1024
    # Contracts of numerical and categorical columns; a column without one gets the defaults.
    rules: Mapping[str, ColumnRules] = field(default_factory=dict)
    timestamps: TimestampPolicy = field(default_factory=TimestampPolicy)

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
        rules = {
            name: contracts.rules_for(name, numerical, model.contracts)
            for name, numerical in value_kinds(model).items()
        }
        stamps = model.timestamps
        policy = TimestampPolicy(stamps.without_zone, stamps.earliest, stamps.max_ahead)
        return cls(tuple(specs), max_string_length, rules, policy)

    def rules_of(self, name: str) -> ColumnRules:
        rules = self.rules.get(name)
        if rules is None:
            rules = contracts.rules_for(name, self.kind_of(name) is ColumnKind.NUMERICAL)
        return rules

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @functools.cached_property
    def codec(self) -> RowCodec:
        """The model's one-pass decoder of row bodies (built on first use)."""
        from monitor_service.rowcodec import RowCodec

        return RowCodec(self)

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


# The JSON types a category may arrive as on the fast path (rowcodec's typed decoder accepts exactly
# these); anything else (e.g. 12.0, which normalises to "12") takes the general path, which applies
# the same rules (values.category_column) and reports what it refuses.
CATEGORY_TYPES: tuple[type, ...] = (str, int, bool)


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
                loc = ("body", "columns", preview(column), row)
            else:
                loc = ("body", "rows", row, preview(column))
            self.items.append(FieldError(loc, msg, kind, preview(value)))

    def add_column(self, column: str, msg: str, kind: str, value: Any = None) -> None:
        """A problem with a whole column of a columnar body."""
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(FieldError(("body", "columns", preview(column)), msg, kind, preview(value)))


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


def _ids(values: list[Any], name: str, errors: _Errors, limit: int) -> np.ndarray:
    """Row ids: strings within the limit, or integers (as text); kept exactly as sent."""
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
        elif t is int:
            if out is values:
                out = list(values)
            out[i] = str(v)
        elif v is not None:
            errors.add(i, name, "Input should be a string or integer or null", "string_type", v)
    array = np.empty(len(out), dtype=object)
    array[:] = out
    return array


def _report(problems: list[Problem], name: str, errors: _Errors) -> None:
    for row, msg, kind, value in problems:
        errors.add(row, name, msg, kind, value)


def _numerical(values: list[Any], name: str, rules: ColumnRules, errors: _Errors, tally: Tally) -> np.ndarray:
    """A numerical column: typed (`_numbers`), then its contract (`contracts.check_numbers`)."""
    array = _numbers(values, name, errors)
    if len(array) != len(values):  # not all numbers: reported already
        return array
    checked = contracts.check_numbers(array, rules)
    _contract(checked, values, name, rules, errors, tally)
    return checked.values


def _categorical(
    values: list[Any],
    name: str,
    schema: RowSchema,
    rules: ColumnRules,
    errors: _Errors,
    tally: Tally,
    interner: CategoryInterner | None,
) -> np.ndarray:
    """A categorical column: normalised (`values.category_column`), then its contract."""
    table = interner.table(rules.column) if interner is not None else {}
    array, problems = category_column(values, table, schema.max_string_length, normalise=rules.normalise)
    if problems:
        _report(problems, name, errors)
        return array
    checked = contracts.check_categories(array, rules)
    _contract(checked, values, name, rules, errors, tally)
    return checked.values


def _contract(
    checked: contracts.Checked,
    values: Sequence[Any] | np.ndarray,
    name: str,
    rules: ColumnRules,
    errors: _Errors,
    tally: Tally,
) -> None:
    tally.add(rules, checked)
    if rules.action == "reject":
        for i in checked.violations.tolist():
            errors.add(i, name, contracts.violation(rules, values[i]), contracts.VIOLATION, values[i])


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
    rows: list[Any],
    schema: RowSchema,
    now: float,
    interner: CategoryInterner | None = None,
    counts: ContractCounts | None = None,
) -> Batch:
    """Check every row; return the batch as columns, or raise ValidationFailed listing each problem.

    With an `interner`, equal categories share one string object (see CategoryInterner); with
    `counts`, what the contracts met is counted (live rows, not replayed ones)."""
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
    return check_columns(transposed, len(rows), schema, now, errors, interner, counts)


def validate_columns(
    columns: Any,
    schema: RowSchema,
    now: float,
    interner: CategoryInterner | None = None,
    counts: ContractCounts | None = None,
) -> Batch:
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
    by_length = Counter(lengths.values())
    rows = by_length.most_common(1)[0][0] if by_length else 0
    for name, length in lengths.items():
        if length != rows:
            errors.add_column(
                name, f"All columns should have the same length: {length}, not {rows}", "length"
            )
    if errors.count:
        raise ValidationFailed(errors.items, errors.count)
    transposed = [columns.get(spec.name) or [None] * rows for spec in schema.columns]
    return check_columns(transposed, rows, schema, now, errors, interner, counts)


def check_columns(
    transposed: list[list[Any]],
    rows: int,
    schema: RowSchema,
    now: float,
    errors: _Errors,
    interner: CategoryInterner | None = None,
    counts: ContractCounts | None = None,
) -> Batch:
    """The values of each column (in schema order) typed, normalised and held to their contracts:
    the one place cell values are checked, for every body format; raises ValidationFailed."""
    columns: dict[str, np.ndarray] = {}
    tally = Tally()
    for spec, values in zip(schema.columns, transposed, strict=True):
        name = spec.name
        if spec.kind is ColumnKind.NUMERICAL:
            columns[name] = _numerical(values, name, schema.rules_of(name), errors, tally)
        elif spec.kind is ColumnKind.CATEGORICAL:
            rules = schema.rules_of(name)
            columns[name] = _categorical(values, name, schema, rules, errors, tally, interner)
        elif spec.kind is ColumnKind.ID:
            columns[name] = _ids(values, name, errors, schema.max_string_length)
        else:
            columns[name], problems = event_times(values, schema.timestamps, now)
            _report(problems, name, errors)
    if counts is not None:
        counts.record(tally, refused=bool(errors.count))
    if errors.count:
        raise ValidationFailed(errors.items, errors.count, rows)
    return Batch(columns, rows)


def validate_labels(
    items: list[Any],
    schema: RowSchema,
    target: str,
    interner: CategoryInterner | None = None,
    counts: ContractCounts | None = None,
) -> tuple[list[str], np.ndarray]:
    """Check `[{"id": ..., "target": ...}]`; return ids and targets typed like the target column
    (normalised and held to its contract as in rows)."""
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
    ids = _ids([item["id"] for item in items], "id", errors, schema.max_string_length)
    values = [item["target"] for item in items]
    rules, tally = schema.rules_of(target), Tally()
    if schema.kind_of(target) is ColumnKind.NUMERICAL:
        targets = _numerical(values, "target", rules, errors, tally)
    else:
        targets = _categorical(values, "target", schema, rules, errors, tally, interner)
    if counts is not None:
        counts.record(tally, refused=bool(errors.count))
    if errors.count:
        raise ValidationFailed(_relabel(errors.items), errors.count, len(items))
    return list(ids), targets


def _relabel(items: list[FieldError]) -> list[FieldError]:
    """Errors of a labels body point into `labels`, not `rows`."""
    return [FieldError(("body", "labels", *e.loc[2:]), e.msg, e.type, e.input) for e in items]
