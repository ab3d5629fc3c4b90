"""A validated batch as one Arrow IPC message: how cluster mode stores rows in the stream.

The accepting monitor validates a batch exactly as one node does (`schema.validate_rows`) and
publishes the result, not the JSON it came in: one Arrow column per configured column (float64 for
numbers and times, strings for categories and ids, nulls where the rows had none), about a third of
the JSON's bytes and decoded without parsing or validating again. The arrival time travels in the
message's headers. Decoding gives back the very arrays validation produced (floats bit for bit,
NaN included), so a window fed from the stream holds what a local window holds.

A batch stored under an older configuration is checked against the current one the way a JSON
body is re-validated at replay: an unknown column or a missing required column makes it invalid
(counted and skipped); a missing optional column (e.g. a target added since) is null.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from monitor_service.errors import FieldError, ValidationFailed
from monitor_service.schema import Batch, CategoryInterner, ColumnKind, RowSchema
from monitor_service.values import MAX_TABLE

FORMAT = "arrow"  # the `Dm-Format` header value of such messages
_VERSION = b"1"
_META_KEY = b"drift-monitor-batch"


def _is_float(kind: ColumnKind) -> bool:
    return kind in (ColumnKind.NUMERICAL, ColumnKind.TIMESTAMP)


def encode_batch(batch: Batch) -> bytes:
    """The batch's columns as an Arrow IPC stream (schema and one record batch)."""
    arrays = []
    for values in batch.columns.values():
        if values.dtype.kind == "f":
            arrays.append(pa.array(values, type=pa.float64()))  # NaN stays a NaN, never a null
        else:
            arrays.append(pa.array(values, type=pa.string(), from_pandas=True))
    record_batch = pa.RecordBatch.from_arrays(arrays, names=list(batch.columns))
    record_batch = record_batch.replace_schema_metadata({_META_KEY: _VERSION})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, record_batch.schema) as writer:
        writer.write_batch(record_batch)
    return bytes(sink.getvalue().to_pybytes())


def decode_batch(body: bytes, schema: RowSchema, interner: CategoryInterner | None = None) -> Batch:
    """The batch `encode_batch` wrote, checked against the model's current columns; ValidationFailed
    when it no longer fits them (or is not such a message)."""
    try:
        table = ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _invalid(("body",), f"not an Arrow batch: {exc}") from exc
    if (table.schema.metadata or {}).get(_META_KEY) != _VERSION:
        raise _invalid(("body",), "not a drift-monitor batch of a known version")
    known = {spec.name: spec for spec in schema.columns}
    unknown = [name for name in table.column_names if name not in known]
    if unknown:
        raise _invalid(("body", "rows", 0, unknown[0]), "Unknown column")
    rows = table.num_rows
    columns: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        if spec.name not in table.column_names:
            if spec.required:
                raise _invalid(("body", "rows", 0, spec.name), "Field required")
            columns[spec.name] = _nulls(rows, spec.kind)
            continue
        array = table.column(spec.name)
        if _is_float(spec.kind):
            if not pa.types.is_floating(array.type) or array.null_count:
                raise _invalid(("body", "rows", 0, spec.name), "Input should be a number")
            columns[spec.name] = np.array(array.to_numpy(), dtype=np.float64)
        else:
            if not pa.types.is_string(array.type):
                raise _invalid(("body", "rows", 0, spec.name), "Input should be a string")
            found = array.to_pylist()
            if interner is not None and spec.kind is ColumnKind.CATEGORICAL:
                found = _shared(found, interner.table(spec.name))
            values = np.empty(rows, dtype=object)
            values[:] = found
            columns[spec.name] = values
    return Batch(columns, rows)


def _shared(found: list[str | None], table: dict[Any, Any]) -> list[str | None]:
    """The categories as the window's string objects: stored categories are normalised already,
    and a normalised category maps to itself in the column's table (values.category_column)."""
    if len(table) > MAX_TABLE:
        table.clear()
    return [None if v is None else table.setdefault(v, v) for v in found]


def _nulls(rows: int, kind: ColumnKind) -> np.ndarray:
    if _is_float(kind):
        return np.full(rows, np.nan)
    return np.full(rows, None, dtype=object)


def _invalid(loc: tuple[str | int, ...], msg: str) -> ValidationFailed:
    return ValidationFailed([FieldError(loc, msg, "value_error", None)])
