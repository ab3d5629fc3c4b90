"""Validated batches through Arrow and back: the same arrays bit for bit, checked against the columns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from monitor_service.config import ModelConfig
from monitor_service.errors import ValidationFailed
from monitor_service.journal.columnar import decode_batch, encode_batch
from monitor_service.schema import CategoryInterner, RowSchema, validate_rows
from tests.conftest import diamonds_model, rows_of

NOW = 1_700_000_000.25


def schema_of(**columns: Any) -> RowSchema:
    model = diamonds_model()
    model["columns"] = {**model["columns"], **columns}
    return RowSchema.from_model(ModelConfig.model_validate(model))


def test_decoded_batch_is_the_validated_batch() -> None:
    schema = schema_of(timestamp="ts")
    rows = rows_of("production", 50)
    for i, row in enumerate(rows):
        row["request_id"] = f"r-{i}" if i % 5 else i  # integer ids become strings
        row["ts"] = None if i % 2 else 1_600_000_000 + i  # null times take the arrival time
        row["carat"] = None if i % 7 == 0 else row["carat"]
        row["price"] = None if i % 3 else row["price"]
        row["cut"] = True if i == 4 else row["cut"]
        row["color"] = None if i == 8 else row["color"]
    rows[9]["depth"] = 9.99e99  # the largest magnitude contracts.max_abs lets in
    rows[10]["table"] = -0.0
    batch = validate_rows(rows, schema, NOW)
    decoded = decode_batch(encode_batch(batch), schema, CategoryInterner())
    assert decoded.rows == batch.rows == 50
    assert list(decoded.columns) == list(batch.columns)
    for name, values in batch.columns.items():
        got = decoded.columns[name]
        assert got.dtype == values.dtype, name
        if values.dtype.kind == "f":
            assert got.tobytes() == values.tobytes(), name  # NaN, -0.0 and 9.99e99 bit for bit
        else:
            assert got.tolist() == values.tolist(), name
    assert decoded.columns["cut"][4] == "true" and decoded.columns["request_id"][0] == "0"
    assert math.isnan(decoded.columns["carat"][0]) and decoded.columns["ts"][1] == NOW


def test_categories_share_one_object_per_value_after_decoding() -> None:
    schema = schema_of()
    batch = validate_rows(rows_of("production", 40), schema, NOW)
    decoded = decode_batch(encode_batch(batch), schema, CategoryInterner())
    cuts = decoded.columns["cut"]
    assert len({id(value) for value in cuts}) == len(set(cuts.tolist()))


def test_a_target_added_since_is_null_and_a_removed_column_is_invalid() -> None:
    without_target = schema_of(target=None)
    batch = validate_rows(
        [{k: v for k, v in row.items() if k != "price"} for row in rows_of("production", 3)],
        without_target,
        NOW,
    )
    body = encode_batch(batch)
    with_target = decode_batch(body, schema_of())
    assert np.isnan(with_target.columns["price"]).all()
    with pytest.raises(ValidationFailed, match="validation"):
        decode_batch(body, schema_of(numerical=["carat", "depth", "table", "x", "y"]))
    with pytest.raises(ValidationFailed):
        decode_batch(body, schema_of(numerical=["carat", "depth", "table", "x", "y", "z", "w"]))


def test_what_is_not_such_a_batch_is_invalid() -> None:
    with pytest.raises(ValidationFailed):
        decode_batch(b'{"rows": []}', schema_of())
