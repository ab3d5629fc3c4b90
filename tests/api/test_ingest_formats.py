"""Columnar bodies (JSON columns, Arrow IPC stream) and gzip on the ingest endpoints: the same rules,
the same window, the same answers; logged bodies replay to the same window after a crash."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import diamonds_model, rows_of, write_config

ROWS = "/v1/models/diamonds/rows"
LABELS = "/v1/models/diamonds/labels"
JSON = {"content-type": "application/json"}
ARROW = {"content-type": "application/vnd.apache.arrow.stream"}
NDJSON = {"content-type": "application/x-ndjson"}
GZIP = {"content-encoding": "gzip"}
CATEGORICAL = ("cut", "color", "clarity")


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row.get(name) for row in rows] for name in rows[0]}


def _arrow(columns: dict[str, Any], schema: pa.Schema | None = None) -> bytes:
    table = pa.table(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _window(client: TestClient) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = client.get("/v1/models/diamonds/window").json()["columns"]
    return columns


def _detail(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return rows_of("production", 40)


def test_ingest_columns_envelope_fills_the_window_like_rows(
    client: TestClient, config: Any, rows: list[dict[str, Any]]
) -> None:
    assert client.post(ROWS, json={"rows": rows}).status_code == 202
    expected = _window(client)
    with TestClient(create_app(config, start_scheduler=False)) as other:
        answer = other.post(ROWS, json={"columns": _columns(rows)})
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 40
        assert _window(other) == expected


def test_ingest_arrow_stream_fills_the_window_like_rows(
    client: TestClient, config: Any, rows: list[dict[str, Any]]
) -> None:
    assert client.post(ROWS, json={"rows": rows}).status_code == 202
    expected = _window(client)
    columns = _columns(rows)
    columns["cut"] = pa.array(columns["cut"]).dictionary_encode()  # dictionary-encoded strings too
    with TestClient(create_app(config, start_scheduler=False)) as other:
        answer = other.post(ROWS, content=_arrow(columns), headers=ARROW)
        assert answer.status_code == 202, answer.text
        assert _window(other) == expected


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (lambda rows: json.dumps({"rows": rows}).encode(), JSON),
        (lambda rows: "\n".join(json.dumps(r) for r in rows).encode(), NDJSON),
        (lambda rows: json.dumps({"columns": _columns(rows)}).encode(), JSON),
        (lambda rows: _arrow(_columns(rows)), ARROW),
    ],
    ids=["json", "ndjson", "columns", "arrow"],
)
def test_ingest_accepts_gzip_in_every_format(
    client: TestClient, rows: list[dict[str, Any]], body: Any, headers: dict[str, str]
) -> None:
    answer = client.post(ROWS, content=gzip.compress(body(rows)), headers={**headers, **GZIP})
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 40


def test_ingest_labels_accept_gzip(client: TestClient, rows: list[dict[str, Any]]) -> None:
    client.post(ROWS, json={"rows": rows})
    body = gzip.compress(json.dumps({"labels": [{"id": rows[0]["request_id"], "target": 1.0}]}).encode())
    answer = client.post(LABELS, content=body, headers={**JSON, **GZIP})
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == 1


def test_ingest_gzip_bomb_is_413(tmp_path: Path) -> None:
    path = write_config(tmp_path / "m.yaml", [diamonds_model()], max_body_bytes=100_000)
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        bomb = gzip.compress(b'{"rows": [' + b" " * 50_000_000 + b"]}", compresslevel=9)
        assert len(bomb) < 100_000
        answer = client.post(ROWS, content=bomb, headers={**JSON, **GZIP})
        assert answer.status_code == 413
        assert "inflates to more than" in answer.json()["detail"]


def test_ingest_unsupported_encoding_is_415_naming_gzip(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    answer = client.post(ROWS, json={"rows": rows}, headers={"content-encoding": "br"})
    assert answer.status_code == 415
    assert "gzip" in answer.json()["detail"]


def test_ingest_gzip_body_without_content_encoding_is_415_saying_so(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    answer = client.post(ROWS, content=gzip.compress(json.dumps({"rows": rows}).encode()), headers=JSON)
    assert answer.status_code == 415
    assert "Content-Encoding: gzip" in answer.json()["detail"]


def test_ingest_broken_gzip_is_400(client: TestClient) -> None:
    answer = client.post(ROWS, content=b"\x1f\x8b\x08\x00garbage", headers={**JSON, **GZIP})
    assert answer.status_code == 400
    assert "gzip" in answer.json()["detail"]


def test_ingest_arrow_errors_are_located_by_column_and_row(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    columns = _columns(rows)
    columns["carat"][3] = float("nan")
    columns["depth"] = [str(v) for v in columns["depth"]]  # strings in a numerical column
    columns["colour"] = ["x"] * len(rows)
    detail = _detail(client.post(ROWS, content=_arrow(columns), headers=ARROW))
    assert {
        "loc": ["body", "columns", "colour"],
        "msg": "Unknown column",
        "type": "extra_forbidden",
        "input": None,
    } in detail
    del columns["colour"]
    detail = _detail(client.post(ROWS, content=_arrow(columns), headers=ARROW))
    locs = [entry["loc"] for entry in detail]
    assert ["body", "columns", "carat", 3] in locs
    assert ["body", "columns", "depth"] in locs
    del columns["cut"]
    columns["depth"] = [1.0] * len(rows)
    columns["carat"][3] = 1.0
    detail = _detail(client.post(ROWS, content=_arrow(columns), headers=ARROW))
    assert [entry["loc"] for entry in detail] == [["body", "columns", "cut"]]
    assert _window(client)["carat"] == []


def test_ingest_arrow_too_long_strings_and_bad_streams(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    columns = _columns(rows)
    columns["color"][5] = "x" * 5000
    detail = _detail(client.post(ROWS, content=_arrow(columns), headers=ARROW))
    assert [entry["loc"] for entry in detail] == [["body", "columns", "color", 5]]
    assert detail[0]["type"] == "string_too_long"
    assert client.post(ROWS, content=b"not arrow", headers=ARROW).status_code == 400
    assert client.post(LABELS, content=_arrow(columns), headers=ARROW).status_code == 415


def test_ingest_arrow_over_the_row_limit_is_413(tmp_path: Path) -> None:
    path = write_config(tmp_path / "m.yaml", [diamonds_model()], max_rows_per_request=10)
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        answer = client.post(ROWS, content=_arrow(_columns(rows_of("production", 11))), headers=ARROW)
        assert answer.status_code == 413


def test_ingest_columns_envelope_errors_point_into_the_columns(
    client: TestClient, rows: list[dict[str, Any]]
) -> None:
    columns = _columns(rows)
    columns["carat"][2] = "heavy"
    columns["depth"] = columns["depth"][:-1]
    detail = _detail(client.post(ROWS, json={"columns": columns}))
    assert [entry["loc"] for entry in detail] == [["body", "columns", "depth"]]
    assert "same length" in detail[0]["msg"]
    columns["depth"].append(1.0)
    detail = _detail(client.post(ROWS, json={"columns": columns}))
    assert [entry["loc"] for entry in detail] == [["body", "columns", "carat", 2]]
    duplicated = json.dumps({"columns": {"carat": [1.0]}})[:-2] + ', "carat": [2.0]}}'
    detail = _detail(client.post(ROWS, content=duplicated.encode(), headers=JSON))
    assert detail[0]["type"] == "duplicate_key"
    assert detail[0]["loc"] == ["body", "columns", "carat"]


def test_every_body_format_replays_from_the_log_to_the_same_window(tmp_path: Path) -> None:
    path = write_config(tmp_path / "monitor.yaml", [diamonds_model()])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    config = load_config(path, environ={})
    rows = rows_of("production", 60)
    batches = [rows[i : i + 10] for i in range(0, 60, 10)]
    bodies = [
        (json.dumps({"rows": batches[0]}).encode(), JSON),
        ("\n".join(json.dumps(r) for r in batches[1]).encode(), NDJSON),
        (json.dumps({"columns": _columns(batches[2])}).encode(), JSON),
        (_arrow(_columns(batches[3])), ARROW),
        (gzip.compress(json.dumps({"columns": _columns(batches[4])}).encode()), {**JSON, **GZIP}),
        (gzip.compress(_arrow(_columns(batches[5]))), {**ARROW, **GZIP}),
    ]
    label = gzip.compress(json.dumps({"labels": [{"id": rows[7]["request_id"], "target": 123.0}]}).encode())
    crashed = tmp_path / "crashed"
    with TestClient(create_app(config, start_scheduler=False)) as client:
        for body, headers in bodies:
            assert client.post(ROWS, content=body, headers=headers).status_code == 202
        assert client.post(LABELS, content=label, headers={**JSON, **GZIP}).status_code == 202
        expected = _window(client)
        shutil.copytree(tmp_path / "data", crashed)  # the log as a crash would leave it: no snapshot
    assert expected["price"][7] == 123.0
    replayed = config.model_copy(update={"storage": config.storage.model_copy(update={"data_dir": crashed})})
    assert not list(crashed.glob("*/snapshot*"))
    with TestClient(create_app(replayed, start_scheduler=False)) as client:
        assert _window(client) == expected
