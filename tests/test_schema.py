from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from monitor_service.config import ModelConfig
from monitor_service.errors import ValidationFailed
from monitor_service.schema import RowSchema, validate_rows
from tests.conftest import diamonds_model, rows_of

SCHEMA = RowSchema.from_model(ModelConfig.model_validate(diamonds_model()), max_string_length=32)
NOW = 1_800_000_000.0


def _locs(rows: list[Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_rows(rows, SCHEMA, NOW)
    return [tuple(e.loc) for e in caught.value.errors]


def test_validate_rows_returns_one_array_per_column() -> None:
    rows = rows_of("production", 3)
    batch = validate_rows(rows, SCHEMA, NOW)
    assert batch.rows == 3
    assert batch.columns["carat"].dtype == np.float64
    assert batch.columns["carat"].tolist() == [r["carat"] for r in rows]
    assert batch.columns["cut"].tolist() == [r["cut"] for r in rows]
    assert batch.columns["request_id"].tolist() == ["d-0", "d-1", "d-2"]


def test_validate_rows_accepts_nulls_as_missing() -> None:
    row = {**rows_of("production", 1)[0], "carat": None, "cut": None, "price": None}
    batch = validate_rows([row], SCHEMA, NOW)
    assert np.isnan(batch.columns["carat"][0])
    assert batch.columns["cut"][0] is None


def test_validate_rows_target_and_id_are_optional() -> None:
    row = rows_of("production", 1)[0]
    del row["price"], row["request_id"]
    batch = validate_rows([row], SCHEMA, NOW)
    assert np.isnan(batch.columns["price"][0])


def test_validate_rows_reports_unknown_and_missing_columns_with_row_index() -> None:
    good = rows_of("production", 2)
    bad = {**good[1], "colour": "red"}
    del bad["carat"]
    assert _locs([good[0], bad]) == [("body", "rows", 1, "colour"), ("body", "rows", 1, "carat")]


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [
        ("carat", "heavy", "float_type"),
        ("carat", True, "float_type"),
        ("carat", float("nan"), "finite_number"),
        ("carat", float("inf"), "finite_number"),
        ("carat", 10**400, "number_too_large"),
        ("carat", [1.0], "float_type"),
        ("cut", 1.5, "category_number"),
        ("cut", float("nan"), "finite_number"),
        ("carat", 1e308, "contract_violation"),
        ("cut", {"a": 1}, "string_type"),
        ("cut", "x" * 33, "string_too_long"),
        ("request_id", [1], "string_type"),
    ],
)
def test_validate_rows_rejects_wrong_types(column: str, value: Any, kind: str) -> None:
    rows = rows_of("production", 3)
    rows[2] = {**rows[2], column: value}
    with pytest.raises(ValidationFailed) as caught:
        validate_rows(rows, SCHEMA, NOW)
    (error,) = caught.value.errors
    assert (tuple(error.loc), error.type) == (("body", "rows", 2, column), kind)


def test_validate_rows_turns_integer_and_boolean_categories_into_strings() -> None:
    rows = rows_of("production", 2)
    rows[0]["cut"], rows[1]["cut"] = 3, False
    assert validate_rows(rows, SCHEMA, NOW).columns["cut"].tolist() == ["3", "false"]


def test_validate_rows_rejects_non_object_rows() -> None:
    assert _locs([rows_of("production", 1)[0], [1, 2], "row"]) == [("body", "rows", 1), ("body", "rows", 2)]


def test_validate_rows_caps_reported_errors_but_counts_all() -> None:
    rows = [{**r, "carat": "x"} for r in rows_of("production", 150)]
    with pytest.raises(ValidationFailed) as caught:
        validate_rows(rows, SCHEMA, NOW)
    assert len(caught.value.errors) == 100
    assert caught.value.total_errors == 150


def test_validate_rows_vectorised_path_equals_row_by_row_result() -> None:
    rows = rows_of("production", 50)
    rows[7]["carat"] = None
    rows[8]["cut"] = None
    rows[9]["depth"] = 61  # an integer among floats
    batch = validate_rows(rows, SCHEMA, NOW)
    for name, column in batch.columns.items():
        if name == "price":
            continue
        expected = [r.get(name) for r in rows]
        got = [None if isinstance(v, float) and np.isnan(v) else v for v in column.tolist()]
        assert got == expected, name


def test_validate_rows_reports_missing_column_in_any_row() -> None:
    rows = rows_of("production", 30)
    del rows[17]["clarity"], rows[29]["prediction"]
    assert _locs(rows) == [("body", "rows", 17, "clarity"), ("body", "rows", 29, "prediction")]
