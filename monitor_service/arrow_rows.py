"""Rows sent as an Arrow IPC stream (`application/vnd.apache.arrow.stream`), validated column by column.

The same rules as JSON rows, applied to whole columns with Arrow's compute functions instead of
value by value:

  numerical    any integer or floating type (or all null); NaN and infinities are refused per row,
               as JSON cannot carry them; nulls are missing values
  categorical  strings (plain, large or dictionary-encoded), integers or booleans; each distinct
               value goes once through values.category_column (the one place categories are
               normalised), so a million rows cost a lookup per distinct category, not per cell
  id           strings or integers
  timestamp    an Arrow timestamp, Unix seconds (numbers) or ISO 8601 strings

Numbers and categories are then held to their column's contract (contracts.py), exactly as in JSON
bodies. A column of another type is refused as a whole (`("body", "columns", name)`); a bad value
with its row (`("body", "columns", name, row)`), at most 100 reported, all counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from monitor_service import contracts
from monitor_service.contracts import ContractCounts, Tally
from monitor_service.errors import BadRequest, ValidationFailed
from monitor_service.schema import (
    Batch,
    CategoryInterner,
    ColumnKind,
    ColumnSpec,
    RowSchema,
    _contract,
    _Errors,
    _ids,
    _report,
)
from monitor_service.timestamps import event_times
from monitor_service.values import category_column

_TYPE_NAMES = {
    ColumnKind.NUMERICAL: "an integer or floating-point type",
    ColumnKind.CATEGORICAL: "a string, integer or boolean type",
    ColumnKind.ID: "a string or integer type",
    ColumnKind.TIMESTAMP: "a timestamp, numeric or string type",
}


def _read(body: bytes) -> pa.Table:
    try:
        with pa.ipc.open_stream(body) as reader:
            return reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
        raise BadRequest(f"body is not a valid Arrow IPC stream: {exc}") from None


def arrow_batch(
    body: bytes,
    schema: RowSchema,
    now: float,
    interner: CategoryInterner | None = None,
    counts: ContractCounts | None = None,
) -> Batch:
    """The rows of an Arrow stream as a validated Batch, or ValidationFailed listing every problem."""
    table = _read(body)
    errors = _Errors(columnar=True)
    names = table.column_names
    allowed = set(schema.names)
    for name in sorted(set(names) - allowed):
        errors.add_column(name, "Unknown column", "extra_forbidden")
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.add_column(name, "Duplicate column", "duplicate_key")
    for spec in schema.columns:
        if spec.required and spec.name not in names:
            errors.add_column(spec.name, "Field required", "missing")
    if errors.count:
        raise ValidationFailed(errors.items, errors.count, table.num_rows)
    rows = table.num_rows
    out: dict[str, np.ndarray] = {}
    tally = Tally()
    for spec in schema.columns:
        if spec.name in names:
            column = table.column(spec.name).combine_chunks()
            out[spec.name] = _convert(column, spec, schema, errors, now, _Column(tally, interner))
        elif spec.kind is ColumnKind.NUMERICAL:
            out[spec.name] = np.full(rows, np.nan)
        elif spec.kind is ColumnKind.TIMESTAMP:
            out[spec.name] = np.full(rows, now)
        else:
            out[spec.name] = np.full(rows, None, dtype=object)
    if counts is not None:
        counts.record(tally, refused=bool(errors.count))
    if errors.count:
        raise ValidationFailed(errors.items, errors.count, rows)
    return Batch(out, rows)


class _Column:
    """What converting one column needs besides the column: the contract tally and the interner."""

    def __init__(self, tally: Tally, interner: CategoryInterner | None) -> None:
        self.tally = tally
        self.interner = interner


def _convert(
    column: pa.Array, spec: ColumnSpec, schema: RowSchema, errors: _Errors, now: float, context: _Column
) -> np.ndarray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode() if spec.kind is not ColumnKind.CATEGORICAL else column
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    null = pa.types.is_null(kind)
    if spec.kind is ColumnKind.NUMERICAL and (
        null or pa.types.is_integer(kind) or pa.types.is_floating(kind)
    ):
        array = _numbers(column, spec.name, errors)
        if errors.count:
            return array
        rules = schema.rules_of(spec.name)
        checked = contracts.check_numbers(array, rules)
        _contract(checked, array, spec.name, rules, errors, context.tally)
        return checked.values
    if spec.kind is ColumnKind.CATEGORICAL and (
        null or _is_text(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
    ):
        return _categories(column, spec.name, schema, errors, context)
    if spec.kind is ColumnKind.ID and (null or _is_text(kind) or pa.types.is_integer(kind)):
        return _ids(column.cast(pa.large_string()).to_pylist(), spec.name, errors, schema.max_string_length)
    if spec.kind is ColumnKind.TIMESTAMP and (
        null
        or _is_text(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_timestamp(kind)
    ):
        if pa.types.is_timestamp(kind):
            seconds = (
                column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64()).to_numpy(zero_copy_only=False)
            )
            values: list[Any] = [None if v != v else float(v) / 1e6 for v in seconds.astype(np.float64)]
        else:
            values = column.to_pylist()
        stamps, problems = event_times(values, schema.timestamps, now)
        _report(problems, spec.name, errors)
        return stamps
    errors.add_column(
        spec.name, f"Column should have {_TYPE_NAMES[spec.kind]}, not {kind}", "type", str(kind)
    )
    return np.empty(0)


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _numbers(column: pa.Array, name: str, errors: _Errors) -> np.ndarray:
    floats = (
        column.cast(pa.float64())
        if not pa.types.is_null(column.type)
        else pa.nulls(len(column), pa.float64())
    )
    array: np.ndarray = floats.to_numpy(zero_copy_only=False)
    if floats.null_count == len(floats) or bool(pc.all(pc.is_finite(floats)).as_py() is not False):
        return array
    bad = np.flatnonzero(~np.isfinite(array) & floats.is_valid().to_numpy(zero_copy_only=False))
    for row in bad:
        errors.add(int(row), name, "Input should be a finite number", "finite_number", str(array[row]))
    return array


def _categories(
    column: pa.Array, name: str, schema: RowSchema, errors: _Errors, context: _Column
) -> np.ndarray:
    """Each distinct value once through values.category_column, spread to the rows by index, then
    the column's contract over the rows."""
    limit = schema.max_string_length
    rules = schema.rules_of(name)
    value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if _is_text(value_type):
        lengths = pc.utf8_length(
            column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
        )
        too_long = np.flatnonzero(
            pc.fill_null(pc.greater(lengths, limit), False).to_numpy(zero_copy_only=False)
        )
        for row in too_long:
            value = column[int(row)].as_py()
            errors.add(
                int(row), name, f"String should have at most {limit} characters", "string_too_long", value
            )
        if len(too_long):
            return np.empty(0)
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    distinct = encoded.dictionary.to_pylist()
    table = context.interner.table(name) if context.interner is not None else {}
    normalised, problems = category_column(distinct, table, limit, normalise=rules.normalise)
    indices = pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False)
    if problems:  # reported at the first row holding each refused value
        first_row = {int(code): row for row, code in reversed(list(enumerate(indices.tolist())))}
        _report([(first_row[i], msg, kind, value) for i, msg, kind, value in problems], name, errors)
        return np.empty(0)
    lookup = np.empty(len(distinct) + 1, dtype=object)
    lookup[: len(distinct)] = normalised
    lookup[len(distinct)] = None
    full: np.ndarray = lookup[indices]
    checked = contracts.check_categories(full, rules)
    _contract(checked, full, name, rules, errors, context.tally)
    return checked.values
