"""Per-column contracts: missing-value codes, allowed ranges and values, and the default magnitude bound."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.cli import EXIT_CONFIG, main
from monitor_service.config import load_config, parse_config
from monitor_service.errors import ConfigError
from tests.conftest import ROOT, diamonds_model, rows_of, write_config

ROWS = "/v1/models/diamonds/rows"
WINDOW = "/v1/models/diamonds/window"
VIOLATIONS = "drift_monitor_contract_violations_total"


def _client(tmp_path: Path, contracts: dict[str, Any], **model: Any) -> TestClient:
    path = write_config(tmp_path / "c.yaml", [diamonds_model(contracts=contracts, **model)])
    return TestClient(create_app(load_config(path, environ={}), start_scheduler=False))


@pytest.fixture
def contracted(tmp_path: Path) -> Iterator[TestClient]:
    contracts = {
        "columns": {
            "carat": {"min": 0, "max": 10, "missing": [999999, -1], "on_violation": "nullify"},
            "depth": {"max": 100, "on_violation": "keep"},
            "table": {"min": 1},
            "cut": {"allowed": ["Fair", "Good", "Very Good", "Premium", "Ideal"], "missing": ["N/A"]},
            "color": {"allowed": list("DEFGHIJ"), "on_violation": "nullify"},
        }
    }
    with _client(tmp_path, contracts) as client:
        yield client


def _sample(client: TestClient, name: str, labels: dict[str, str]) -> float | None:
    value: float | None = client.app.state.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return value


def _rows(count: int, **values: Any) -> list[dict[str, Any]]:
    return [{**row, **values} for row in rows_of("production", count)]


def _window(client: TestClient, column: str) -> list[Any]:
    values: list[Any] = client.get(WINDOW, params={"columns": column}).json()["columns"][column]
    return values


def test_missing_value_codes_become_nulls(contracted: TestClient) -> None:
    rows = _rows(4)
    rows[0]["carat"], rows[1]["carat"], rows[2]["cut"] = 999999, -1.0, "N/A"
    assert contracted.post(ROWS, json={"rows": rows}).status_code == 202
    assert _window(contracted, "carat")[:3] == [None, None, rows[2]["carat"]]
    assert _window(contracted, "cut")[2] is None
    labels = {"model": "diamonds", "column": "carat"}
    assert _sample(contracted, "drift_monitor_missing_codes_total", labels) == 2
    assert _sample(contracted, VIOLATIONS, {**labels, "action": "nullify"}) in (None, 0)


def test_violation_refused_with_row_column_and_the_bound(contracted: TestClient) -> None:
    rows = _rows(5)
    rows[3]["table"] = 0.5
    rows[4]["cut"] = "Excellent"
    response = contracted.post(ROWS, json={"rows": rows})
    assert response.status_code == 422
    detail = {tuple(e["loc"]): e for e in response.json()["detail"]}
    assert set(detail) == {("body", "rows", 3, "table"), ("body", "rows", 4, "cut")}
    assert "at least 1" in detail[("body", "rows", 3, "table")]["msg"]
    assert detail[("body", "rows", 4, "cut")]["input"] == "Excellent"
    assert detail[("body", "rows", 4, "cut")]["type"] == "contract_violation"
    assert _window(contracted, "table") == []
    for column in ("table", "cut"):
        labels = {"model": "diamonds", "column": column, "action": "reject"}
        assert _sample(contracted, VIOLATIONS, labels) == 1


def test_violation_stored_as_null_or_kept_and_counted(contracted: TestClient) -> None:
    rows = _rows(3)
    rows[0]["carat"], rows[1]["depth"], rows[2]["color"] = 12.5, 250.0, "Z"
    assert contracted.post(ROWS, json={"rows": rows}).status_code == 202
    assert _window(contracted, "carat")[0] is None
    assert _window(contracted, "depth")[1] == 250.0
    assert _window(contracted, "color")[2] is None
    counted = {
        column: _sample(contracted, VIOLATIONS, {"model": "diamonds", "column": column, "action": action})
        for column, action in (("carat", "nullify"), ("depth", "keep"), ("color", "nullify"))
    }
    assert counted == {"carat": 1, "depth": 1, "color": 1}


def test_a_refused_batch_does_not_count_the_violations_it_would_have_nulled(contracted: TestClient) -> None:
    rows = _rows(2)
    rows[0]["carat"], rows[1]["table"] = 12.5, 0.0
    assert contracted.post(ROWS, json={"rows": rows}).status_code == 422
    labels = {"model": "diamonds", "column": "carat", "action": "nullify"}
    assert _sample(contracted, VIOLATIONS, labels) in (None, 0)


@pytest.mark.parametrize("value", [1e308, -1.7976931348623157e308, 1e101])
def test_magnitudes_no_measurement_has_are_refused_by_default(client: TestClient, value: float) -> None:
    response = client.post(ROWS, json={"rows": _rows(1, carat=value)})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, "carat"]
    assert "1e+100" in error["msg"] and "contracts.max_abs" in error["msg"]


def test_magnitude_bound_can_be_raised_or_its_values_kept(tmp_path: Path) -> None:
    with _client(tmp_path, {"max_abs": None}) as client:
        assert client.post(ROWS, json={"rows": _rows(1, carat=1e308)}).status_code == 202
        assert _window(client, "carat") == [1e308]
    with _client(tmp_path, {"on_violation": "nullify"}) as client:
        assert client.post(ROWS, json={"rows": _rows(1, carat=1e308, depth=1e200)}).status_code == 202
        assert (_window(client, "carat"), _window(client, "depth")) == ([None], [None])


def test_calculations_survive_sentinels_kept_on_purpose(tmp_path: Path) -> None:
    rows = [dict(r, carat=1e308 if i % 2 else -1.7976931348623157e308) for i, r in enumerate(_rows(60))]
    with _client(tmp_path, {"max_abs": None}) as client:
        assert client.post(ROWS, json={"rows": rows}).status_code == 202
        calculated = client.post("/v1/models/diamonds/calculate")
        assert calculated.status_code == 200, calculated.text[:300]
        assert client.get("/metrics").status_code == 200


def test_labels_obey_the_target_contract(tmp_path: Path) -> None:
    contracts = {"columns": {"price": {"min": 0, "missing": [-1]}}}
    with _client(tmp_path, contracts) as client:
        client.post(ROWS, json={"rows": rows_of("production", 3)})
        bad = client.post("/v1/models/diamonds/labels", json={"labels": [{"id": "d-0", "target": -5.0}]})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "labels", 0, "target"]
        coded = client.post("/v1/models/diamonds/labels", json={"labels": [{"id": "d-1", "target": -1}]})
        assert coded.status_code == 202
        assert _window(client, "price")[1] is None


def _problems(contracts: dict[str, Any]) -> list[str]:
    model = diamonds_model(contracts=contracts)
    text = yaml.safe_dump({"models": [model]})
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml", ROOT, environ={})
    return caught.value.problems


@pytest.mark.parametrize(
    ("contracts", "expected"),
    [
        ({"columns": {"weight": {"min": 0}}}, "not declared"),
        ({"columns": {"request_id": {"min": 0}}}, "id and timestamp"),
        ({"columns": {"cut": {"min": 0}}}, "categorical"),
        ({"columns": {"carat": {"allowed": [1, 2]}}}, "numerical"),
        ({"columns": {"carat": {"normalise": False}}}, "numerical"),
        ({"columns": {"carat": {"min": 5, "max": 1}}}, "min"),
        ({"columns": {"carat": {"missing": ["N/A"]}}}, "numbers"),
        ({"on_violation": "drop"}, "reject"),
        ({"max_abs": 0}, "greater than 0"),
    ],
)
def test_config_refuses_contracts_that_cannot_apply(contracts: dict[str, Any], expected: str) -> None:
    problems = _problems(contracts)
    assert any(expected in p and p.startswith("models[0].contracts") for p in problems), problems


def _reference(tmp_path: Path, lines: list[str]) -> Path:
    frame = Path(ROOT / "datasets" / "diamonds" / "reference.csv").read_text().splitlines()[:6]
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(frame + lines) + "\n")
    return path


BAD_ROW = "12.5,Ideal,E,SI1,61.0,55.0,4.0,4.0,2.5,500,510.0"  # carat 12.5, outside [0, 10]


def test_reference_violations_refuse_the_reference_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = _reference(tmp_path, [BAD_ROW, BAD_ROW.replace("Ideal", "Superb")])
    model = diamonds_model(
        reference=str(reference),
        contracts={
            "columns": {
                "carat": {"max": 10},
                "cut": {"allowed": ["Fair", "Good", "Very Good", "Premium", "Ideal"]},
            }
        },
    )
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "column 'carat'" in err and "lines 7, 8" in err and "12.5" in err
    assert "column 'cut'" in err and "line 8" in err and "Superb" in err


def test_reference_violations_nulled_or_kept_are_reported_by_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = _reference(tmp_path, [BAD_ROW, BAD_ROW.replace("12.5", "999999")])
    contracts = {"columns": {"carat": {"max": 10, "missing": [999999], "on_violation": "nullify"}}}
    model = diamonds_model(reference=str(reference), contracts=contracts)
    path = write_config(tmp_path / "c.yaml", [model])
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "column 'carat': 1 value(s) above the maximum 10 at line 7 (first 12.5) stored as null" in out
    assert "column 'carat': 1 missing-value code(s) stored as null" in out
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        client.post(ROWS, json={"rows": rows_of("production", 20)})
        result = client.post("/v1/models/diamonds/calculate").json()
    carat = next(q for q in result["quality"] if q["column"] == "carat")
    assert math.isclose(carat["missing_reference"], 2 / 7)
