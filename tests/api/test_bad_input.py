"""Hostile and malformed input on every endpoint: a clear 4xx, never a 5xx, and an untouched window.

Every rejection test seeds the window with a few unlabelled rows first and compares the whole
observable state afterwards (`GET /v1/models` window size, `GET .../window` contents, waiting
labels), so a request that is refused but half-applied is caught too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import diamonds_model, rows_of, write_config

MODEL = "diamonds"
ROWS = f"/v1/models/{MODEL}/rows"
LABELS = f"/v1/models/{MODEL}/labels"
CALCULATE = f"/v1/models/{MODEL}/calculate"
WINDOW = f"/v1/models/{MODEL}/window"
JSON = "application/json"
NDJSON = "application/x-ndjson"
MAX_STRING = 1024  # server.max_string_length's default
DEEP = 10_000


def _row(**changes: Any) -> dict[str, Any]:
    """One valid, unlabelled diamonds row (the seeded rows' ids are d-0, d-1, d-2)."""
    row = {k: v for k, v in rows_of("production", 1, start=10)[0].items() if k != "price"}
    return {**row, "request_id": "r-new", **changes}


def _row_text(column: str, literal: str) -> str:
    """One row as JSON text whose `column` is the raw JSON text `literal` (NaN, 1e400, ...)."""
    return json.dumps(_row(**{column: "__LITERAL__"})).replace('"__LITERAL__"', literal)


def _with_literal(column: str, literal: str) -> bytes:
    return f'{{"rows": [{_row_text(column, literal)}]}}'.encode()


def _envelope(items: list[Any], key: str = "rows") -> bytes:
    return json.dumps({key: items}).encode()


def _ndjson(*lines: str) -> bytes:
    return "\n".join(lines).encode()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@dataclass(frozen=True)
class Bad:
    """One bad request body and the answer it must get."""

    id: str
    body: bytes
    content_type: str | None
    status: int | tuple[int, ...]
    loc: tuple[str | int, ...] | None = None


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    rows = [{k: v for k, v in r.items() if k != "price"} for r in rows_of("production", 3)]
    assert client.post(ROWS, json={"rows": rows}).status_code == 202
    return client


def _state(client: TestClient) -> tuple[int, dict[str, Any], float | None]:
    """Everything a rejected request must leave alone: window size and rows, waiting labels."""
    (model,) = client.get("/v1/models").json()["models"]
    window = client.get(WINDOW)
    assert window.status_code == 200
    registry = client.app.state.registry  # type: ignore[attr-defined]
    pending = registry.get_sample_value("drift_monitor_labels_pending", {"model": MODEL})
    return model["window_rows"], window.json(), pending


def _post(client: TestClient, path: str, body: bytes, content_type: str | None) -> Any:
    headers = {"content-type": content_type} if content_type is not None else {}
    return client.post(path, content=body, headers=headers)


def _assert_clean_rejection(response: Any, bad: Bad) -> None:
    """The expected 4xx with a JSON `detail`: a message, or one located entry per problem (422)."""
    expected = bad.status if isinstance(bad.status, tuple) else (bad.status,)
    assert response.status_code in expected, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    if response.status_code == 422:
        assert isinstance(detail, list)
        assert detail
        for entry in detail:
            assert {"loc", "msg", "type"} <= entry.keys()
            assert entry["loc"][0] in ("body", "query", "path")
        if bad.loc is not None:
            assert list(bad.loc) in [entry["loc"] for entry in detail], detail
    else:
        assert isinstance(detail, str)
        assert detail


ROW_CASES = [
    # Not JSON at all, or not UTF-8.
    Bad("malformed-json", b'{"rows": [', JSON, 400),
    Bad("empty-body", b"", JSON, 400),
    Bad("trailing-garbage", _envelope([_row()]) + b" x", JSON, 400),
    Bad("single-quotes", b"{'rows': []}", JSON, 400),
    Bad("invalid-utf8", _envelope([_row(cut="__X__")]).replace(b"__X__", b"\xff\xfe"), JSON, 400),
    Bad("lone-surrogate-escape", _with_literal("cut", '"\\ud800"'), JSON, 400),
    Bad("utf16-body", json.dumps({"rows": [_row()]}).encode("utf-16"), JSON, 400),
    Bad("bom-prefixed", b"\xef\xbb\xbf" + _envelope([_row()]), JSON, 400),
    # Wrong content types.
    Bad("no-content-type", _envelope([_row()]), None, 415),
    Bad("text-plain", _envelope([_row()]), "text/plain", 415),
    Bad("text-csv", b"carat,cut\n1,Ideal\n", "text/csv", 415),
    Bad("form-urlencoded", b"rows=1", "application/x-www-form-urlencoded", 415),
    Bad("multipart", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415),
    Bad("xml", b"<rows/>", "application/xml", 415),
    Bad("json-suffix-type", _envelope([_row()]), "application/merge-patch+json", 415),
    Bad("ndjson-body-as-json", _ndjson(json.dumps(_row()), json.dumps(_row())), JSON, 400),
    Bad("json-envelope-as-ndjson", _envelope([_row()]), NDJSON, 422, ("body", "rows", 0, "rows")),
    # Bodies that are JSON but not the envelope.
    Bad("body-string", b'"rows"', JSON, 422, ("body", "rows")),
    Bad("body-number", b"42", JSON, 422, ("body", "rows")),
    Bad("body-null", b"null", JSON, 422, ("body", "rows")),
    Bad("body-true", b"true", JSON, 422, ("body", "rows")),
    Bad("body-bare-list", _envelope([_row()])[len(b'{"rows": ') : -1], JSON, 422, ("body", "rows")),
    Bad("rows-object", b'{"rows": {"carat": 1}}', JSON, 422, ("body", "rows")),
    Bad("rows-null", b'{"rows": null}', JSON, 422, ("body", "rows")),
    Bad("rows-string", b'{"rows": "[]"}', JSON, 422, ("body", "rows")),
    Bad(
        "extra-envelope-key",
        json.dumps({"rows": [_row()], "model": "x"}).encode(),
        JSON,
        422,
        ("body", "model"),
    ),
    # Empty batches.
    Bad("empty-batch", b'{"rows": []}', JSON, 422, ("body", "rows")),
    Bad("ndjson-blank-lines-only", b"\n \n\r\n\t\n", NDJSON, 422, ("body", "rows")),
    Bad("ndjson-empty-body", b"", NDJSON, 422, ("body", "rows")),
    # Rows that are not objects.
    Bad("row-number", _envelope([_row(), 1]), JSON, 422, ("body", "rows", 1)),
    Bad("row-string", _envelope(["carat=1"]), JSON, 422, ("body", "rows", 0)),
    Bad("row-null", _envelope([None]), JSON, 422, ("body", "rows", 0)),
    Bad("row-list", _envelope([[_row()]]), JSON, 422, ("body", "rows", 0)),
    Bad("row-bool", _envelope([True]), JSON, 422, ("body", "rows", 0)),
    Bad("row-empty-object", _envelope([{}]), JSON, 422, ("body", "rows", 0, "carat")),
    # Wrong cell types.
    Bad("numerical-string", _envelope([_row(carat="1.0")]), JSON, 422, ("body", "rows", 0, "carat")),
    Bad("numerical-bool", _envelope([_row(carat=True)]), JSON, 422, ("body", "rows", 0, "carat")),
    Bad("numerical-list", _envelope([_row(carat=[1.0])]), JSON, 422, ("body", "rows", 0, "carat")),
    Bad("numerical-object", _envelope([_row(carat={"v": 1})]), JSON, 422, ("body", "rows", 0, "carat")),
    Bad("categorical-float", _envelope([_row(cut=1.5)]), JSON, 422, ("body", "rows", 0, "cut")),
    Bad("categorical-list", _envelope([_row(cut=["Ideal"])]), JSON, 422, ("body", "rows", 0, "cut")),
    Bad("categorical-object", _envelope([_row(cut={})]), JSON, 422, ("body", "rows", 0, "cut")),
    Bad("id-float", _envelope([_row(request_id=1.5)]), JSON, 422, ("body", "rows", 0, "request_id")),
    Bad("id-list", _envelope([_row(request_id=["a"])]), JSON, 422, ("body", "rows", 0, "request_id")),
    # README: the id is "string or integer"; a boolean is neither.
    Bad("id-bool", _envelope([_row(request_id=True)]), JSON, 422, ("body", "rows", 0, "request_id")),
    Bad("target-string", _envelope([_row(price="cheap")]), JSON, 422, ("body", "rows", 0, "price")),
    Bad(
        "prediction-null-string",
        _envelope([_row(prediction="null")]),
        JSON,
        422,
        ("body", "rows", 0, "prediction"),
    ),
    Bad("unknown-column", _envelope([_row(colour="E")]), JSON, 422, ("body", "rows", 0, "colour")),
    Bad(
        "unicode-unknown-column",
        _envelope([_row(**{"cärät\u0000": 1})]),
        JSON,
        422,
        ("body", "rows", 0, "cärät\u0000"),
    ),
    Bad(
        "missing-column",
        _envelope([{k: v for k, v in _row().items() if k != "cut"}]),
        JSON,
        422,
        ("body", "rows", 0, "cut"),
    ),
    Bad("second-row-bad", _envelope([_row(), _row(depth="deep")]), JSON, 422, ("body", "rows", 1, "depth")),
    # Non-finite and huge numbers: not representable, so refused before anything is stored.
    Bad("nan-literal", _with_literal("carat", "NaN"), JSON, 400),
    Bad("nan-lowercase", _with_literal("carat", "nan"), JSON, 400),
    Bad("infinity-literal", _with_literal("carat", "Infinity"), JSON, 400),
    Bad("minus-infinity-literal", _with_literal("carat", "-Infinity"), JSON, 400),
    Bad("1e400", _with_literal("carat", "1e400"), JSON, (400, 422)),
    Bad("minus-1e400", _with_literal("carat", "-1e400"), JSON, (400, 422)),
    Bad("10-pow-400-digits", _with_literal("carat", "1" + "0" * 400), JSON, (400, 422)),
    Bad("10-pow-400-in-categorical", _with_literal("cut", "1" + "0" * 400), JSON, (400, 422)),
    Bad("10-pow-400-in-id", _with_literal("request_id", "1" + "0" * 400), JSON, (400, 422)),
    Bad("hex-number", _with_literal("carat", "0x10"), JSON, 400),
    Bad("leading-zero-number", _with_literal("carat", "01"), JSON, 400),
    # Strings beyond server.max_string_length (characters, not bytes).
    Bad(
        "categorical-too-long",
        _envelope([_row(cut="x" * (MAX_STRING + 1))]),
        JSON,
        422,
        ("body", "rows", 0, "cut"),
    ),
    Bad(
        "categorical-too-long-emoji",
        _envelope([_row(cut="😀" * (MAX_STRING + 1))]),
        JSON,
        422,
        ("body", "rows", 0, "cut"),
    ),
    Bad(
        "id-too-long",
        _envelope([_row(request_id="i" * (MAX_STRING + 1))]),
        JSON,
        422,
        ("body", "rows", 0, "request_id"),
    ),
    Bad("categorical-2mb", _envelope([_row(cut="x" * 2_000_000)]), JSON, 422, ("body", "rows", 0, "cut")),
    Bad(
        "numerical-2mb-string",
        _envelope([_row(carat="9" * 2_000_000)]),
        JSON,
        422,
        ("body", "rows", 0, "carat"),
    ),
    # Deep nesting: refused by the parser's depth limit or located at the cell, never a RecursionError.
    Bad("deep-rows-value", f'{{"rows": {_nested(DEEP)}}}'.encode(), JSON, (400, 422)),
    Bad("deep-cell", _with_literal("cut", _nested(DEEP)), JSON, (400, 422)),
    Bad("deep-objects-cell", _with_literal("cut", _nested_objects(DEEP)), JSON, (400, 422)),
    Bad("deep-body", _nested(DEEP).encode(), JSON, (400, 422)),
    Bad("deep-ndjson-line", _ndjson(json.dumps(_row()), _nested(DEEP)), NDJSON, (400, 422)),
    Bad("nested-500-cell", _with_literal("cut", _nested(500)), JSON, 422, ("body", "rows", 0, "cut")),
    # Within orjson's depth limit (1024) but deeper than Python's recursion limit: a second parse with
    # the standard library (e.g. to find duplicate keys) must not hit a RecursionError.
    Bad(
        "nested-1000-cell-with-colon",
        _with_literal("cut", "[" * 1000 + '"a:b"' + "]" * 1000),
        JSON,
        (400, 422),
    ),
    Bad(
        "nested-1000-cell-and-duplicate-key",
        f'{{"rows": [{_row_text("cut", _nested(1000))[:-1]}, "carat": 9.9}}]}}'.encode(),
        JSON,
        (400, 422),
    ),
    # NDJSON with a bad line.
    Bad("ndjson-invalid-line", _ndjson(json.dumps(_row()), "{oops"), NDJSON, 400),
    Bad("ndjson-nan-line", _ndjson(json.dumps(_row()), _row_text("depth", "NaN")), NDJSON, (400, 422)),
    Bad("ndjson-two-rows-one-line", _ndjson(json.dumps(_row()) + " " + json.dumps(_row())), NDJSON, 400),
    Bad("ndjson-list-line", _ndjson(json.dumps([_row()])), NDJSON, 422, ("body", "rows", 0)),
    Bad("ndjson-scalar-line", _ndjson(json.dumps(_row()), "3"), NDJSON, 422, ("body", "rows", 1)),
    Bad(
        "ndjson-bad-cell",
        _ndjson(json.dumps(_row()), json.dumps(_row(carat="x"))),
        NDJSON,
        422,
        ("body", "rows", 1, "carat"),
    ),
]


@pytest.mark.parametrize("bad", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_ingest_rows_rejects_bad_input_cleanly_and_keeps_the_window(seeded: TestClient, bad: Bad) -> None:
    before = _state(seeded)
    response = _post(seeded, ROWS, bad.body, bad.content_type)
    _assert_clean_rejection(response, bad)
    assert _state(seeded) == before


DUPLICATE_KEY_CASES = [
    # orjson keeps the last of duplicated keys: the first value is silently lost. Refuse instead.
    Bad(
        "duplicate-cell",
        _envelope([_row()])[:-3] + b', "carat": 9.9}]}',
        JSON,
        422,
        ("body", "rows", 0, "carat"),
    ),
    Bad(
        "duplicate-rows-key", b'{"rows": [], "rows": ' + _envelope([_row()])[9:], JSON, 422, ("body", "rows")
    ),
    Bad(
        "duplicate-cell-ndjson",
        json.dumps(_row())[:-1].encode() + b', "cut": "Fair"}',
        NDJSON,
        422,
        ("body", "rows", 0, "cut"),
    ),
]


@pytest.mark.parametrize("bad", DUPLICATE_KEY_CASES, ids=[c.id for c in DUPLICATE_KEY_CASES])
def test_ingest_rows_rejects_duplicate_json_keys(seeded: TestClient, bad: Bad) -> None:
    before = _state(seeded)
    response = _post(seeded, ROWS, bad.body, bad.content_type)
    _assert_clean_rejection(response, bad)
    assert _state(seeded) == before


def test_ingest_error_echo_is_bounded_for_a_huge_unknown_column_name(seeded: TestClient) -> None:
    """`_preview` keeps echoed inputs short; a 1 MB column name must not come back whole in `loc`."""
    before = _state(seeded)
    response = seeded.post(ROWS, json={"rows": [_row(**{"k" * 1_000_000: 1})]})
    assert response.status_code == 422
    assert len(response.content) < 10_000
    assert _state(seeded) == before


def test_ingest_error_list_is_bounded_for_a_batch_of_bad_rows(seeded: TestClient) -> None:
    before = _state(seeded)
    response = seeded.post(ROWS, json={"rows": [_row(carat="x" * 1000) for _ in range(5000)]})
    assert response.status_code == 422
    body = response.json()
    assert body["error_count"] == 5000
    assert len(body["detail"]) <= 100
    assert len(response.content) < 100_000
    assert _state(seeded) == before


GOOD_STRINGS = [
    pytest.param("Idéal", id="latin1"),
    pytest.param("理想的", id="cjk"),
    pytest.param("😀💎", id="emoji"),
    pytest.param("a\u0000b", id="nul"),
    pytest.param("\u0007\u001b[31m\u007f", id="bell-escape-del"),
    pytest.param("line\nbreak\r\ttab", id="newline-tab"),
    pytest.param("\u202eevil\u200b\ufeff", id="bidi-zero-width-bom"),
    pytest.param("\u2028\u2029", id="line-separators"),
    pytest.param("", id="empty"),
    pytest.param(" ", id="space"),
    pytest.param("x" * MAX_STRING, id="exactly-max-length"),
    pytest.param("💎" * MAX_STRING, id="max-length-in-4-byte-characters"),
]


@pytest.mark.parametrize("value", GOOD_STRINGS)
def test_ingest_accepts_unicode_and_control_characters_within_limits(client: TestClient, value: str) -> None:
    for content_type, body in (
        (JSON, json.dumps({"rows": [_row(cut=value, request_id=value)]})),
        (NDJSON, json.dumps(_row(cut=value, request_id=value)) + "\n"),
        (JSON, json.dumps({"rows": [_row(cut=value)]}, ensure_ascii=False)),
    ):
        response = _post(client, ROWS, body.encode(), content_type)
        assert response.status_code == 202, response.text[:300]
    window = client.get(WINDOW, params={"columns": "cut,request_id"}).json()["columns"]
    assert window["cut"] == [value] * 3
    assert window["request_id"] == [value, value, "r-new"]
    label = client.post(LABELS, json={"labels": [{"id": value, "target": 512.0}]})
    assert label.status_code == 202
    assert label.json()["matched"] == 1


@pytest.mark.parametrize(
    ("literal", "stored"),
    [
        ("1e100", 1e100),  # the largest magnitude contracts.max_abs allows by default (see test_contracts)
        ("-1E+100", -1e100),
        ("5e-324", 5e-324),
        ("-0.0", -0.0),
        ("18446744073709551615", 18446744073709551615.0),
        ("-9223372036854775809", -9223372036854775809.0),
        ("1E+2", 100.0),
    ],
)
def test_ingest_accepts_extreme_finite_numbers(client: TestClient, literal: str, stored: float) -> None:
    response = _post(client, ROWS, _with_literal("carat", literal), JSON)
    assert response.status_code == 202, response.text
    assert client.get(WINDOW, params={"columns": "carat"}).json()["columns"]["carat"] == [stored]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=utf-8", _envelope([_row()])),
        ("APPLICATION/JSON", _envelope([_row()])),
        ("application/x-ndjson", _ndjson("", json.dumps(_row()), "", "  ", json.dumps(_row()), "")),
        ("application/jsonl", "\r\n".join([json.dumps(_row()), json.dumps(_row())]).encode()),
    ],
    ids=["json-charset", "json-uppercase", "ndjson-blank-lines", "jsonl-crlf"],
)
def test_ingest_accepts_content_type_variants_and_blank_ndjson_lines(
    client: TestClient, content_type: str, body: bytes
) -> None:
    response = _post(client, ROWS, body, content_type)
    assert response.status_code == 202, response.text
    assert response.json()["window_rows"] == response.json()["accepted"]


# Labels carry ids of the seeded rows (d-0..d-2) wherever it matters: a label that slipped through
# would write a target into the window, and the state check would see it.
def _label(**changes: Any) -> dict[str, Any]:
    return {"id": "d-0", "target": 512.0, **changes}


def _labels_with_literal(field: str, literal: str) -> bytes:
    return json.dumps({"labels": [_label(), _label(**{field: "__X__"})]}).replace('"__X__"', literal).encode()


LABEL_CASES = [
    Bad("malformed-json", b'{"labels": [', JSON, 400),
    Bad("empty-body", b"", JSON, 400),
    Bad("invalid-utf8", b'{"labels": [{"id": "\xff", "target": 1}]}', JSON, 400),
    Bad("no-content-type", _envelope([_label()], "labels"), None, 415),
    Bad("text-plain", _envelope([_label()], "labels"), "text/plain", 415),
    Bad("body-string", b'"labels"', JSON, 422, ("body", "labels")),
    Bad("body-number", b"1", JSON, 422, ("body", "labels")),
    Bad("body-null", b"null", JSON, 422, ("body", "labels")),
    Bad("rows-envelope", _envelope([_label()], "rows"), JSON, 422, ("body", "labels")),
    Bad("extra-envelope-key", json.dumps({"labels": [_label()], "x": 1}).encode(), JSON, 422, ("body", "x")),
    Bad("empty-batch", b'{"labels": []}', JSON, 422, ("body", "labels")),
    Bad("ndjson-blank-only", b"\n\n", NDJSON, 422, ("body", "labels")),
    Bad("label-number", _envelope([_label(), 1], "labels"), JSON, 422, ("body", "labels", 1)),
    Bad("label-null", _envelope([_label(), None], "labels"), JSON, 422, ("body", "labels", 1)),
    Bad("label-list", _envelope([[_label()]], "labels"), JSON, 422, ("body", "labels", 0)),
    Bad(
        "missing-id", _envelope([_label(), {"target": 1.0}], "labels"), JSON, 422, ("body", "labels", 1, "id")
    ),
    Bad(
        "missing-target",
        _envelope([_label(), {"id": "d-1"}], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "target"),
    ),
    Bad(
        "null-target",
        _envelope([_label(), _label(target=None)], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "target"),
    ),
    Bad(
        "extra-field",
        _envelope([_label(), _label(model="x")], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "model"),
    ),
    Bad("id-float", _envelope([_label(), _label(id=1.5)], "labels"), JSON, 422, ("body", "labels", 1, "id")),
    Bad(
        "id-list", _envelope([_label(), _label(id=["d-1"])], "labels"), JSON, 422, ("body", "labels", 1, "id")
    ),
    Bad("id-object", _envelope([_label(), _label(id={})], "labels"), JSON, 422, ("body", "labels", 1, "id")),
    # The schema (`id: string | integer`) and the error message say so; `true` must not become "true".
    Bad("id-bool", _envelope([_label(), _label(id=True)], "labels"), JSON, 422, ("body", "labels", 1, "id")),
    Bad(
        "id-too-long",
        _envelope([_label(), _label(id="i" * (MAX_STRING + 1))], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "id"),
    ),
    Bad(
        "target-string",
        _envelope([_label(), _label(target="cheap")], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "target"),
    ),
    Bad(
        "target-bool",
        _envelope([_label(), _label(target=False)], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "target"),
    ),
    Bad(
        "target-list",
        _envelope([_label(), _label(target=[1])], "labels"),
        JSON,
        422,
        ("body", "labels", 1, "target"),
    ),
    Bad("target-nan", _labels_with_literal("target", "NaN"), JSON, 400),
    Bad("target-infinity", _labels_with_literal("target", "-Infinity"), JSON, 400),
    Bad("target-1e400", _labels_with_literal("target", "1e400"), JSON, (400, 422)),
    Bad("target-10-pow-400", _labels_with_literal("target", "1" + "0" * 400), JSON, (400, 422)),
    Bad("id-10-pow-400", _labels_with_literal("id", "1" + "0" * 400), JSON, (400, 422)),
    Bad("deep-labels", f'{{"labels": {_nested(DEEP)}}}'.encode(), JSON, (400, 422)),
    Bad("deep-target", _labels_with_literal("target", _nested(DEEP)), JSON, (400, 422)),
    Bad("ndjson-invalid-line", _ndjson(json.dumps(_label()), "{"), NDJSON, 400),
    Bad(
        "ndjson-bad-item",
        _ndjson(json.dumps(_label()), json.dumps(_label(target="x"))),
        NDJSON,
        422,
        ("body", "labels", 1, "target"),
    ),
    Bad(
        "duplicate-target-key",
        b'{"labels": [{"id": "d-0", "target": 1, "target": 2}]}',
        JSON,
        422,
        ("body", "labels", 0, "target"),
    ),
    Bad(
        "duplicate-id-key",
        b'{"labels": [{"id": "d-0", "id": "d-1", "target": 2}]}',
        JSON,
        422,
        ("body", "labels", 0, "id"),
    ),
]


@pytest.mark.parametrize("bad", LABEL_CASES, ids=[c.id for c in LABEL_CASES])
def test_ingest_labels_rejects_bad_input_cleanly_and_keeps_the_window(seeded: TestClient, bad: Bad) -> None:
    before = _state(seeded)
    response = _post(seeded, LABELS, bad.body, bad.content_type)
    _assert_clean_rejection(response, bad)
    assert _state(seeded) == before


REFERENCE_CASES = [
    Bad("json-null-row", b'{"rows": [null]}', JSON, 422, ("body", "rows", 0)),
    Bad("json-number-row", b'{"rows": [1]}', JSON, 422, ("body", "rows", 0)),
    Bad("json-list-row", b'{"rows": [[1, 2]]}', JSON, 422),
    Bad("json-one-good-one-null", _envelope([_row(price=1.0), None]), JSON, 422, ("body", "rows", 1)),
    Bad("json-empty", b'{"rows": []}', JSON, 422),
    Bad("json-body-null", b"null", JSON, 422, ("body", "rows")),
    Bad("json-nan", b'{"rows": [NaN]}', JSON, 400),
    Bad("json-deep", f'{{"rows": {_nested(DEEP)}}}'.encode(), JSON, (400, 422)),
    Bad("json-malformed", b'{"rows": [', JSON, 400),
    Bad("csv-empty", b"", "text/csv", (400, 422)),
    Bad("csv-unterminated-quote", b'"', "text/csv", 400),
    Bad("csv-binary", b"\x00\xff\xfe", "text/csv", 400),
    Bad("csv-wrong-columns", b"a,b\n1,2\n", "text/csv", 422),
    Bad("parquet-garbage", b"PAR1xxxxPAR1", "application/vnd.apache.parquet", 400),
    Bad("xml", b"<rows/>", "application/xml", 415),
]


@pytest.mark.parametrize("bad", REFERENCE_CASES, ids=[c.id for c in REFERENCE_CASES])
def test_put_reference_rejects_bad_input_cleanly_and_keeps_the_reference(
    seeded: TestClient, bad: Bad
) -> None:
    before = _state(seeded), seeded.get("/v1/models").json()["models"][0]["reference_rows"]
    response = seeded.put(
        f"/v1/models/{MODEL}/reference", content=bad.body, headers={"content-type": bad.content_type or ""}
    )
    _assert_clean_rejection(response, bad)
    assert (_state(seeded), seeded.get("/v1/models").json()["models"][0]["reference_rows"]) == before


UNKNOWN_MODELS = [
    pytest.param("nope", id="plain"),
    pytest.param("DIAMONDS", id="other-case"),
    pytest.param("diamonds ", id="trailing-space"),
    pytest.param("d%C3%AFamonds", id="unicode"),
    pytest.param("%00", id="nul"),
    pytest.param("x" * 10_000, id="10k-characters"),
    pytest.param("..%2Fdiamonds", id="encoded-dot-dot"),
]


@pytest.mark.parametrize("name", UNKNOWN_MODELS)
def test_every_model_endpoint_answers_unknown_models_with_404(seeded: TestClient, name: str) -> None:
    before = _state(seeded)
    base = f"/v1/models/{name}"
    answers = [
        seeded.post(f"{base}/rows", json={"rows": [_row()]}),
        seeded.post(f"{base}/labels", json={"labels": [_label()]}),
        seeded.post(f"{base}/calculate"),
        seeded.get(f"{base}/results"),
        seeded.get(f"{base}/report"),
        seeded.get(f"{base}/window"),
    ]
    for response in answers:
        assert response.status_code == 404, (response.request.url, response.status_code)
        assert isinstance(response.json()["detail"], str)
    assert _state(seeded) == before
    exported = {
        sample.labels.get("model")
        for family in text_string_to_metric_families(seeded.get("/metrics").text)
        for sample in family.samples
    }
    assert unquote(name) not in exported


CALCULATE_BODIES = [
    pytest.param(b'{"rows": [', JSON, id="malformed-json"),
    pytest.param(b"NaN", JSON, id="nan"),
    pytest.param(_nested(DEEP).encode(), JSON, id="deep"),
    pytest.param(b"\xff\xfe", "text/plain", id="binary-text"),
    pytest.param(_envelope([_row()]), JSON, id="rows-envelope"),
]


@pytest.mark.parametrize(("body", "content_type"), CALCULATE_BODIES)
def test_calculate_ignores_any_body_and_never_changes_the_window(
    seeded: TestClient, body: bytes, content_type: str
) -> None:
    """`calculate` takes no body: whatever is sent along is ignored, nothing is ingested."""
    before = _state(seeded)
    response = _post(seeded, CALCULATE, body, content_type)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["current_rows"] == 3
    assert _state(seeded) == before


def test_calculate_on_an_empty_window_is_409_whatever_the_body(client: TestClient) -> None:
    for body, content_type in ((b"{", JSON), (b"", None), (_envelope([_row()]), JSON)):
        response = _post(client, CALCULATE, body, content_type)
        assert response.status_code == 409
        assert "no rows" in response.json()["detail"]
    assert client.get("/v1/models").json()["models"][0]["window_rows"] == 0


@pytest.mark.parametrize(
    ("columns", "unknown"),
    [
        (",", ""),
        ("nope", "nope"),
        ("carat,nope", "nope"),
        ("cärät\u0000", "cärät\u0000"),
        (" carat", " carat"),
        ("__arrival__", "__arrival__"),
        ("x" * 5000, "x" * 64 + "..."),  # long inputs are echoed cut short
    ],
    ids=[
        "empty-names",
        "unknown",
        "one-unknown",
        "unicode-nul",
        "leading-space",
        "internal-column",
        "5000-chars",
    ],
)
def test_window_export_rejects_unknown_columns_with_422(
    seeded: TestClient, columns: str, unknown: str
) -> None:
    before = _state(seeded)
    response = seeded.get(WINDOW, params={"columns": columns})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert all(entry["loc"] == ["query", "columns"] for entry in detail)
    assert unknown in [entry["input"] for entry in detail]
    assert _state(seeded) == before


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/readyz", "/metrics", "/v1/models", f"/v1/models/{MODEL}/results", WINDOW],
)
def test_read_endpoints_ignore_bodies_and_odd_query_strings(seeded: TestClient, path: str) -> None:
    before = _state(seeded)
    response = seeded.request(
        "GET",
        path,
        content=_nested(DEEP).encode(),
        headers={"content-type": "application/json"},
        params={"x": "\u0000" * 10, "rows": "[", "model": "nope"},
    )
    assert response.status_code == 200
    assert _state(seeded) == before


def _hostile_windows() -> dict[str, list[dict[str, Any]]]:
    """Valid rows that are as awkward as the contract allows (labelled, but for the first)."""
    base = rows_of("production", 60)
    unlabelled = [{k: v for k, v in r.items() if k != "price"} for r in base]
    return {
        "unlabelled": unlabelled,
        "one-row": base[:1],
        "two-rows": base[:2],
        "all-null-feature": [dict(r, carat=None, cut=None) for r in base],
        "all-null-prediction": [dict(r, prediction=None) for r in base],
        "unicode-control-categories": [
            dict(r, cut="\u0000\u202e😀", color="x" * MAX_STRING, clarity="") for r in base
        ],
        "extreme-finite-numbers": [
            dict(r, carat=1e100 if i % 2 else -1e100, depth=5e-324) for i, r in enumerate(base)
        ],
        "constant-everything": [
            dict(
                r,
                carat=1.0,
                depth=60.0,
                table=55.0,
                x=4.0,
                y=4.0,
                z=2.5,
                cut="Ideal",
                color="E",
                clarity="SI1",
            )
            for r in base
        ],
        "all-targets-zero": [dict(r, price=0.0) for r in base],
    }


HOSTILE = _hostile_windows()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_calculation_results_and_metrics_survive_hostile_but_valid_windows(
    client: TestClient, name: str
) -> None:
    """Input the monitor accepts must never break what reads it: calculate, results, metrics."""
    rows = HOSTILE[name]
    assert client.post(ROWS, json={"rows": rows}).status_code == 202
    calculated = client.post(CALCULATE)
    assert calculated.status_code == 200, calculated.text[:500]
    assert calculated.json()["current_rows"] == len(rows)
    results = client.get(f"/v1/models/{MODEL}/results")
    assert results.status_code == 200
    assert results.json()["status"] == "ok"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    families = {f.name for f in text_string_to_metric_families(metrics.text)}
    assert "drift_monitor_dataset_rows" in families


# Evidently cannot bin a range near 2e308 for its plots (kept only with contracts.max_abs raised):
# the calculation stands and no report is stored, which /report says (404).
REPORT_MAY_BE_REFUSED = {"extreme-finite-numbers"}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_html_report_survives_hostile_but_valid_windows(client: TestClient, name: str) -> None:
    """The report of an accepted window is stored and renders (columns it cannot test are left
    out); never a 5xx."""
    rows = HOSTILE[name]
    assert client.post(ROWS, json={"rows": rows}).status_code == 202
    assert client.post(f"/v1/models/{MODEL}/calculate").status_code == 200
    response = client.get(f"/v1/models/{MODEL}/report")
    if name in REPORT_MAY_BE_REFUSED and response.status_code == 404:
        assert "no stored report" in response.json()["detail"]  # Evidently refused to draw it
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")


@pytest.fixture
def timestamp_client(tmp_path: Path) -> Iterator[TestClient]:
    model = diamonds_model()
    model["columns"] = {**model["columns"], "timestamp": "ts"}
    config = load_config(write_config(tmp_path / "monitor.yaml", [model]), environ={})
    with TestClient(create_app(config, start_scheduler=False)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("nope", id="not-a-date"),
        pytest.param("2024-13-01", id="month-13"),
        pytest.param("2024-01-01T25:00", id="hour-25"),
        pytest.param("x" * 5000, id="long-string"),
        pytest.param(-1, id="negative-seconds"),
        pytest.param(1e12, id="milliseconds"),
        pytest.param(True, id="bool"),
        pytest.param([2024, 1, 1], id="list"),
    ],
)
def test_ingest_rejects_bad_timestamps_with_422(timestamp_client: TestClient, value: Any) -> None:
    response = timestamp_client.post(ROWS, json={"rows": [_row(ts=value)]})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["loc"] == ["body", "rows", 0, "ts"]
    assert timestamp_client.get("/v1/models").json()["models"][0]["window_rows"] == 0


@pytest.mark.parametrize(
    "value",
    ["0001-01-01", "0001-01-01T00:00:00", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999999-23:59"],
)
def test_ingest_answers_iso_timestamps_at_the_calendar_edges_without_5xx(
    timestamp_client: TestClient, value: str
) -> None:
    """Valid ISO 8601 text far from now: stored (its Unix seconds) or refused at its cell, never a 500."""
    response = timestamp_client.post(ROWS, json={"rows": [_row(ts=value)]})
    assert response.status_code in (202, 422), response.text[:300]
    window_rows = timestamp_client.get("/v1/models").json()["models"][0]["window_rows"]
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "rows", 0, "ts"]
        assert window_rows == 0
    else:
        assert window_rows == 1
