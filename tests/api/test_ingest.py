from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.conftest import rows_of

URL = "/v1/models/diamonds/rows"


def _window_rows(client: TestClient) -> int:
    models = client.get("/v1/models").json()["models"]
    rows: int = models[0]["window_rows"]
    return rows


def _sample(client: TestClient, name: str, labels: dict[str, str]) -> float | None:
    registry = client.app.state.registry  # type: ignore[attr-defined]
    value: float | None = registry.get_sample_value(name, labels)
    return value


def test_ingest_accepts_json_batch_with_counts(client: TestClient) -> None:
    response = client.post(URL, json={"rows": rows_of("production", 25)})
    assert response.status_code == 202
    assert response.json() == {"model": "diamonds", "accepted": 25, "window_rows": 25}
    assert _sample(client, "drift_monitor_rows_ingested_total", {"model": "diamonds"}) == 25
    count = _sample(client, "drift_monitor_ingest_request_duration_seconds_count", {"model": "diamonds"})
    assert count == 1


def test_ingest_accepts_ndjson(client: TestClient) -> None:
    body = "\n".join(json.dumps(r) for r in rows_of("production", 7)) + "\n\n"
    response = client.post(URL, content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 202
    assert response.json()["accepted"] == 7


def test_ingest_unknown_model_is_404_and_counted_without_its_name(client: TestClient) -> None:
    response = client.post("/v1/models/nope/rows", json={"rows": rows_of("production", 1)})
    assert response.status_code == 404
    assert (
        _sample(client, "drift_monitor_requests_rejected_total", {"model": "", "reason": "unknown_model"})
        == 1
    )
    assert "nope" not in client.get("/metrics").text


def test_ingest_batch_is_atomic(client: TestClient) -> None:
    client.post(URL, json={"rows": rows_of("production", 5)})
    rows = rows_of("production", 10, start=5)
    rows[9]["carat"] = "heavy"
    response = client.post(URL, json={"rows": rows})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "rows", 9, "carat"],
            "msg": "Input should be a number or null",
            "type": "float_type",
            "input": "heavy",
        }
    ]
    assert _window_rows(client) == 5
    assert (
        _sample(client, "drift_monitor_rows_rejected_total", {"model": "diamonds", "reason": "validation"})
        == 10
    )


def test_ingest_rejects_body_over_limit_with_413(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    service.config = service.config.model_copy(
        update={"server": service.config.server.model_copy(update={"max_body_bytes": 1000})}
    )
    response = client.post(URL, json={"rows": rows_of("production", 20)})
    assert response.status_code == 413
    assert response.json()["reason"] == "body_too_large"
    assert _window_rows(client) == 0


def test_ingest_rejects_too_many_rows_with_413(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    service.config = service.config.model_copy(
        update={"server": service.config.server.model_copy(update={"max_rows_per_request": 10})}
    )
    response = client.post(URL, json={"rows": rows_of("production", 11)})
    assert response.status_code == 413
    assert response.json()["reason"] == "too_many_rows"
    assert (
        _sample(client, "drift_monitor_rows_rejected_total", {"model": "diamonds", "reason": "too_many_rows"})
        == 11
    )


def test_ingest_rejects_malformed_json_with_400(client: TestClient) -> None:
    response = client.post(URL, content=b'{"rows": [', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_ingest_rejects_bad_ndjson_line_with_its_number(client: TestClient) -> None:
    body = json.dumps(rows_of("production", 1)[0]) + "\n{oops\n"
    response = client.post(URL, content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 400
    assert "line 2" in response.json()["detail"]
    assert _window_rows(client) == 0


def test_ingest_rejects_wrong_content_type_with_415(client: TestClient) -> None:
    response = client.post(URL, content=b"carat,cut\n1,Ideal", headers={"content-type": "text/csv"})
    assert response.status_code == 415


def test_ingest_rejects_wrong_envelope_and_empty_batch_with_422(client: TestClient) -> None:
    assert client.post(URL, json=rows_of("production", 1)).status_code == 422
    assert client.post(URL, json={"rows": {"carat": 1}}).status_code == 422
    extra = client.post(URL, json={"rows": rows_of("production", 1), "model": "x"})
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["body", "model"]
    empty = client.post(URL, json={"rows": []})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["type"] == "too_short"


def test_ingest_rejects_nan_literals(client: TestClient) -> None:
    row = json.dumps(rows_of("production", 1)[0]).replace('"carat": 1.09', '"carat": NaN')
    response = client.post(URL, content=f'{{"rows": [{row}]}}', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert _window_rows(client) == 0
