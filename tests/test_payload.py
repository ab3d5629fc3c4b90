"""payload: bodies that cannot be valid are refused before a full parse; valid ones are not."""

from __future__ import annotations

import json

import orjson
import pytest

from monitor_service.errors import PayloadTooLarge, ValidationFailed
from monitor_service.payload import Budget, parse_items

BUDGET = Budget(max_items=100, max_fields=5)


def _row(i: int) -> dict[str, object]:
    return {"a": float(i), "b": "x", "c": None, "d": i, "e": True}


def test_parse_items_within_budget_parses_as_before() -> None:
    body = orjson.dumps({"rows": [_row(i) for i in range(100)]})
    assert parse_items(body, False, "rows", BUDGET) == parse_items(body, False, "rows")


def test_parse_items_refuses_nested_arrays_over_budget_without_parsing_them() -> None:
    body = b'{"rows": [{"a": [' + b",".join([b"[]"] * 50_000) + b"]}]}"
    with pytest.raises(ValidationFailed) as caught:
        parse_items(body, False, "rows", BUDGET)
    (error,) = caught.value.errors
    assert error.type == "too_complex"
    assert error.loc == ("body", "rows", 0)


def test_parse_items_refuses_too_many_items_before_parsing() -> None:
    body = orjson.dumps({"rows": [{} for _ in range(5000)]})
    with pytest.raises(PayloadTooLarge) as caught:
        parse_items(body, False, "rows", BUDGET)
    assert caught.value.reason == "too_many_rows"


def test_parse_items_refuses_too_many_ndjson_lines_before_parsing() -> None:
    body = b"{}\n" * 5000
    with pytest.raises(PayloadTooLarge):
        parse_items(body, True, "rows", BUDGET)


def test_parse_items_refuses_a_nested_ndjson_line_with_its_number() -> None:
    lines = [json.dumps(_row(i)).encode() for i in range(3)]
    lines.append(b'{"a": [' + b",".join([b"[]"] * 1000) + b"]}")
    with pytest.raises(ValidationFailed) as caught:
        parse_items(b"\n".join(lines), True, "rows", BUDGET)
    assert caught.value.errors[0].loc == ("body", "rows", 3)


def test_parse_items_accepts_brackets_and_colons_inside_strings_over_budget() -> None:
    rows = [{"a": 1.0, "b": "[{:}]" * 200} for _ in range(50)]
    body = orjson.dumps({"rows": rows})
    assert body.count(b"[") > BUDGET.containers and body.count(b":") > BUDGET.members
    assert parse_items(body, False, "rows", BUDGET) == rows


def test_parse_items_reports_many_duplicate_keys_without_locating_them() -> None:
    body = b'{"rows": [{' + b",".join([b'"a": 1'] * 5000) + b"}]}"
    with pytest.raises(ValidationFailed) as caught:
        parse_items(body, False, "rows", BUDGET)
    (error,) = caught.value.errors
    assert error.type == "duplicate_key"
    assert "4999 members dropped" in error.msg


def test_parse_items_still_locates_a_few_duplicate_keys() -> None:
    body = b'{"rows": [{"a": 1, "a": 2}]}'
    with pytest.raises(ValidationFailed) as caught:
        parse_items(body, False, "rows", BUDGET)
    assert caught.value.errors[0].loc == ("body", "rows", 0, "a")
