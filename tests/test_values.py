"""One logical value, one category: the same normalisation for live rows, labels and references."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import ModelConfig, load_config
from monitor_service.errors import ValidationFailed
from monitor_service.reference import normalise, parse_reference, read_table
from monitor_service.schema import RowSchema, validate_rows
from monitor_service.values import category, category_column
from tests.conftest import ROOT, write_config

NOW = 1_800_000_000.0


def _model(tmp_path: Path, reference: str, **extra: Any) -> dict[str, Any]:
    path = tmp_path / "ref.csv"
    path.write_text(reference)
    return {
        "name": "m",
        "task": "classification",
        "reference": str(path),
        "columns": {"prediction": "p", "numerical": ["x"], "categorical": ["flag", "code"]},
        "schedule": {"every": "1h", "min_rows": 1},
        **extra,
    }


def _schema(model: dict[str, Any]) -> RowSchema:
    return RowSchema.from_model(ModelConfig.model_validate(model))


def _categories(schema: RowSchema, column: str, values: list[Any]) -> list[Any]:
    rows = [{"p": "a", "x": 1.0, "flag": "true", "code": "1", column: v} for v in values]
    return list(validate_rows(rows, schema, NOW).columns[column])


REFERENCE = "p,x,flag,code\na,1.0,TRUE,012\nb,2.0,FALSE,12.0\na,3.0,True,7\nb,4.0,,12\n"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (True, "true"),
        (False, "false"),
        ("true", "true"),
        ("TRUE", "true"),
        ("True", "true"),
        ("False", "false"),
        (np.bool_(True), "true"),
        (12, "12"),
        (12.0, "12"),
        ("12", "12"),
        ("12.0", "12"),
        ("12.00", "12"),
        (-3.0, "-3"),
        ("-3.0", "-3"),
        (-0.0, "0"),
        ("-0", "0"),
        (np.int64(12), "12"),
        (np.float64(12.0), "12"),
        ("012", "012"),
        ("012.0", "012.0"),
        ("1.5", "1.5"),
        ("1e3", "1e3"),
        ("+12", "+12"),
        (" 12", " 12"),
        ("yes", "yes"),
        ("1", "1"),
        (None, None),
    ],
)
def test_category_normalises_spellings_of_one_value(sent: Any, stored: str | None) -> None:
    assert category(sent) == stored


@pytest.mark.parametrize("sent", ["TRUE", "12.0", "-0", "True"])
def test_category_without_normalisation_keeps_strings_as_sent(sent: str) -> None:
    assert category(sent, normalise=False) == sent


def test_category_without_normalisation_still_gives_numbers_and_booleans_their_text() -> None:
    assert [category(v, normalise=False) for v in (12.0, 12, True)] == ["12", "12", "true"]


@pytest.mark.parametrize(("sent", "kind"), [(1.5, "category_number"), ([1], "string_type")])
def test_category_column_reports_values_that_are_not_categories(sent: Any, kind: str) -> None:
    array, problems = category_column(["a", sent, None], {}, 64)
    assert [(row, problem_type) for row, _msg, problem_type, _value in problems] == [(1, kind)]
    assert len(array) == 3


def test_category_column_shares_one_string_object_per_category() -> None:
    table: dict[Any, Any] = {}
    first, _ = category_column(["TRUE", "x" + "y"], table, 64)
    second, _ = category_column([True, "".join(["x", "y"])], table, 64)
    assert first[0] is second[0] and first[0] == "true"
    assert first[1] is second[1]


def test_validate_rows_accepts_integral_json_number_in_categorical_column(tmp_path: Path) -> None:
    schema = _schema(_model(tmp_path, REFERENCE))
    assert _categories(schema, "code", [12.0, 12, "12", "12.0", "012"]) == ["12", "12", "12", "12", "012"]


def test_validate_rows_gives_every_boolean_spelling_one_category(tmp_path: Path) -> None:
    schema = _schema(_model(tmp_path, REFERENCE))
    assert _categories(schema, "flag", [True, "true", "TRUE", "True", False, "FALSE"]) == [
        "true",
        "true",
        "true",
        "true",
        "false",
        "false",
    ]


def test_validate_rows_refuses_non_integral_number_in_categorical_column_saying_why(tmp_path: Path) -> None:
    schema = _schema(_model(tmp_path, REFERENCE))
    with pytest.raises(ValidationFailed) as caught:
        _categories(schema, "code", [1.5])
    (error,) = caught.value.errors
    assert tuple(error.loc) == ("body", "rows", 0, "code")
    assert error.type == "category_number"
    assert "not integral" in error.msg and "string" in error.msg


def test_reference_csv_categories_match_live_spellings_and_keep_leading_zeros(tmp_path: Path) -> None:
    model = _model(tmp_path, REFERENCE)
    schema = _schema(model)
    frame, problems = normalise(read_table(Path(model["reference"]), schema), schema)
    assert problems == []
    assert frame["flag"].tolist() == ["true", "false", "true", None]
    assert frame["code"].tolist() == ["012", "12", "7", "12"]
    live = _categories(schema, "flag", [True, "TRUE"]) + _categories(schema, "code", [12.0, "012"])
    assert set(live) <= set(frame["flag"]) | set(frame["code"])


def test_reference_parquet_and_json_categories_follow_the_same_rule(tmp_path: Path) -> None:
    model = _model(tmp_path, REFERENCE)
    schema = _schema(model)
    typed = pd.DataFrame({"p": ["a", "b"], "x": [1.0, 2.0], "flag": [True, False], "code": [12.0, np.nan]})
    path = tmp_path / "ref.parquet"
    typed.to_parquet(path)
    frame, problems = normalise(read_table(path, schema), schema)
    assert problems == []
    assert frame["flag"].tolist() == ["true", "false"]
    assert frame["code"].tolist() == ["12", None]
    body = b'{"rows": [{"p": "a", "x": 1, "flag": "TRUE", "code": 12345678901234567}, {"p": "b", "x": 2}]}'
    as_json = parse_reference(body, "application/json", schema, max_rows=100)
    assert as_json["flag"].tolist() == ["true", None]
    assert as_json["code"].tolist() == ["12345678901234567", None]  # not rounded through a float


def test_reference_refuses_non_integral_number_in_categorical_column_with_its_row(tmp_path: Path) -> None:
    model = _model(tmp_path, REFERENCE)
    schema = _schema(model)
    typed = pd.DataFrame(
        {"p": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "flag": [True] * 3, "code": [1, 2.5, 3]}
    )
    path = tmp_path / "ref.parquet"
    typed.to_parquet(path)
    _, problems = normalise(read_table(path, schema), schema)
    assert len(problems) == 1
    column, message = problems[0]
    assert column == "code" and "row 2" in message and "2.5" in message


def test_normalisation_can_be_turned_off_per_column(tmp_path: Path) -> None:
    model = _model(tmp_path, REFERENCE, contracts={"columns": {"code": {"normalise": False}}})
    schema = _schema(model)
    assert _categories(schema, "code", ["12.0", "12", 12.0]) == ["12.0", "12", "12"]
    assert _categories(schema, "flag", ["TRUE"]) == ["true"]  # the other columns still normalise
    frame, _ = normalise(read_table(Path(model["reference"]), schema), schema)
    assert frame["code"].tolist() == ["012", "12.0", "7", "12"]


def test_normalisation_can_be_turned_off_per_model(tmp_path: Path) -> None:
    schema = _schema(_model(tmp_path, REFERENCE, contracts={"normalise": False}))
    assert _categories(schema, "flag", ["TRUE", True]) == ["TRUE", "true"]


def test_labels_of_a_classification_target_normalise_like_rows(tmp_path: Path) -> None:
    model = _model(tmp_path, "p,x,flag,code,y\n1,1.0,TRUE,1,1\n0,2.0,FALSE,2,0\n")
    model["columns"] = {**model["columns"], "id": "id", "target": "y"}
    config = load_config(write_config(tmp_path / "c.yaml", [model]), environ={})
    with TestClient(create_app(config, start_scheduler=False)) as client:
        rows = [{"id": f"r{i}", "p": 1, "x": 1.0, "flag": True, "code": 1} for i in range(3)]
        assert client.post("/v1/models/m/rows", json={"rows": rows}).status_code == 202
        labels = [{"id": "r0", "target": 1.0}, {"id": "r1", "target": "1.0"}, {"id": "r2", "target": 0}]
        assert client.post("/v1/models/m/labels", json={"labels": labels}).status_code == 202
        window = client.get("/v1/models/m/window", params={"columns": "y,p"}).json()["columns"]
        assert window == {"y": ["1", "1", "0"], "p": ["1", "1", "1"]}


def test_boolean_spellings_in_reference_and_live_rows_give_no_new_categories(tmp_path: Path) -> None:
    lines = ["p,x,flag,code"] + [
        f"{'ab'[i % 2]},{i},{'TRUE' if i % 3 else 'FALSE'},{i % 4}" for i in range(200)
    ]
    model = _model(tmp_path, "\n".join(lines) + "\n")
    config = load_config(write_config(tmp_path / "c.yaml", [model]), environ={})
    with TestClient(create_app(config, start_scheduler=False)) as client:
        rows = [
            {
                "p": "ab"[i % 2],
                "x": float(i),
                "flag": [True, "true", "True", False][i % 4],
                "code": float(i % 4),
            }
            for i in range(200)
        ]
        assert client.post("/v1/models/m/rows", json={"rows": rows}).status_code == 202
        result = client.post("/v1/models/m/calculate").json()
    new = {q["column"]: q["new_category"] for q in result["quality"] if q["new_category"] is not None}
    assert new == {"flag": 0.0, "code": 0.0, "p": 0.0}


def _readme_category_examples() -> list[tuple[str, str]]:
    """The README's table of category examples: `sent` (a JSON literal) -> `stored` (a string)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- category-examples -->")[1]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]*)` \|", section.split("\n\n")[0], re.MULTILINE)
    assert len(rows) >= 8
    return rows


def test_readme_category_examples_are_what_ingest_and_references_store(tmp_path: Path) -> None:
    import orjson

    schema = _schema(_model(tmp_path, REFERENCE))
    examples = _readme_category_examples()
    sent = [orjson.loads(literal) for literal, _ in examples]
    assert _categories(schema, "code", sent) == [stored for _, stored in examples]
    text_cells = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in sent]
    csv = "p,x,flag,code\n" + "".join(f"a,1.0,true,{cell}\n" for cell in text_cells)
    reference = tmp_path / "examples.csv"
    reference.write_text(csv)
    frame, problems = normalise(read_table(reference, schema), schema)
    assert problems == []
    assert frame["code"].tolist() == [stored for _, stored in examples]
