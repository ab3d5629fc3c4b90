"""The one-pass decoder answers only what the general path would accept, with the same columns.

The general path (payload.parse_items + schema.validate_rows) defines the rules; RowCodec must
either return exactly its batch or step aside (None), whatever the body holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor_service.errors import MonitorError, ValidationFailed
from monitor_service.payload import parse_items, parse_json_body
from monitor_service.schema import Batch, validate_columns, validate_rows
from tests.test_properties import NOW, PROPERTIES, SCHEMA, _rows


def _general(body: bytes, ndjson: bool) -> Batch | MonitorError:
    try:
        return validate_rows(parse_items(body, ndjson, "rows"), SCHEMA, NOW)
    except MonitorError as exc:
        return exc


def _general_columns(body: bytes) -> Batch | MonitorError:
    try:
        return validate_columns(parse_json_body(body, "columns")["columns"], SCHEMA, NOW)
    except MonitorError as exc:
        return exc


def _check(fast: Callable[[], Batch | None], general: Callable[[], Batch | MonitorError]) -> None:
    """The fast path returns the general path's batch, raises its errors, or steps aside."""
    try:
        batch = fast()
    except ValidationFailed as refused:  # only values checked one by one (timestamps) raise here
        expected = general()
        assert isinstance(expected, ValidationFailed), "the fast path refused what the general path takes"
        assert refused.errors == expected.errors
        return
    if batch is not None:
        expected = general()
        assert isinstance(expected, Batch), (
            f"the fast path accepted what the general path refuses: {expected}"
        )
        _same(batch, expected)


def _same(fast: Batch, general: Batch) -> None:
    assert fast.rows == general.rows
    assert fast.columns.keys() == general.columns.keys()
    for name, expected in general.columns.items():
        actual = fast.columns[name]
        assert actual.dtype == expected.dtype, name
        for a, e in zip(actual.tolist(), expected.tolist(), strict=True):
            if isinstance(e, float) and math.isnan(e):
                assert isinstance(a, float) and math.isnan(a), name
            else:
                assert a == e and type(a) is type(e), (name, a, e)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@settings(PROPERTIES, max_examples=600)
@given(rows=_rows, ascii_only=st.booleans())
def test_rowcodec_rows_agree_with_the_general_path(rows: list[Any], ascii_only: bool) -> None:
    body = _encode({"rows": rows}, ascii_only)
    _check(lambda: SCHEMA.codec.rows(body, NOW), lambda: _general(body, False))


@settings(PROPERTIES, max_examples=300)
@given(rows=_rows, ascii_only=st.booleans())
def test_rowcodec_ndjson_agrees_with_the_general_path(rows: list[Any], ascii_only: bool) -> None:
    body = b"\n".join(_encode(row, ascii_only) for row in rows)
    _check(lambda: SCHEMA.codec.ndjson(body, NOW), lambda: _general(body, True))


@settings(PROPERTIES, max_examples=300)
@given(rows=_rows, ascii_only=st.booleans())
def test_rowcodec_columns_agree_with_the_general_path(rows: list[Any], ascii_only: bool) -> None:
    names = sorted({name for row in rows if isinstance(row, dict) for name in row})
    columns = {name: [row.get(name) if isinstance(row, dict) else row for row in rows] for name in names}
    body = _encode({"columns": columns}, ascii_only)
    _check(lambda: SCHEMA.codec.columns(body, NOW), lambda: _general_columns(body))


VALID = {"p": 1.5, "num": 2, "cat": "a", "id": "r-1", "ts": "2023-11-14T00:00:00+00:00", "y": None}


def test_rowcodec_takes_a_plain_valid_body() -> None:
    body = _encode({"rows": [VALID, {**VALID, "cat": True, "id": 7}]}, True)
    fast = SCHEMA.codec.rows(body, NOW)
    assert fast is not None
    assert fast.columns["cat"].tolist() == ["a", "true"]
    assert fast.columns["id"].tolist() == ["r-1", "7"]
    assert np.isnan(fast.columns["y"]).all()


@pytest.mark.parametrize(
    "body",
    [
        b'{"rows": [{"p": 1, "num": 2, "cat": "a", "num": 3}]}',  # duplicate cell: the last would win
        b'{"rows": [], "rows": [{"p": 1, "num": 2, "cat": "a"}]}',  # duplicate envelope key
        b'{"rows": [{"p": 1, "num": 2, "cat": "a:b", "cat": "c"}]}',  # a colon in a string, and a duplicate
        b'{"p": 1, "num": 2, "cat": "a"} {"p": 1, "num": 2, "cat": "a"}',  # not an envelope
        b'{"rows": [{"p": 1, "num": 2, "cat": 18446744073709551615}]}',  # beyond int64: orjson decides
    ],
)
def test_rowcodec_steps_aside_for_bodies_only_the_general_path_can_judge(body: bytes) -> None:
    assert SCHEMA.codec.rows(body, NOW) is None


def test_rowcodec_ndjson_steps_aside_for_two_rows_on_one_line() -> None:
    line = _encode({"p": 1, "num": 2, "cat": "a"}, True)
    assert SCHEMA.codec.ndjson(line + b" " + line, NOW) is None
    assert SCHEMA.codec.ndjson(line + b"\n\n" + line + b"\n", NOW) is not None
