"""The model service's HTTP API with TestClient: predictions, request ids, bad input, metrics."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from example_model_service.app import create_app
from example_model_service.models import FEATURES, PROBABILITY_COLUMN
from example_model_service.settings import Settings
from monitor_service.config import load_config
from monitor_service.schema import RowSchema, validate_rows
from tests.example_service.conftest import RecordingSink

REPO = Path(__file__).resolve().parents[2]
ROW: dict[str, Any] = {
    "carat": 0.31,
    "cut": "Ideal",
    "color": "E",
    "clarity": "SI2",
    "depth": 61.5,
    "table": 55.0,
    "x": 4.3,
    "y": 4.31,
    "z": 2.65,
}
BIG_ROW: dict[str, Any] = {
    **ROW,
    "carat": 1.7,
    "x": 7.55,
    "y": 7.5,
    "z": 4.66,
    "color": "G",
    "clarity": "VS1",
}


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _poll_ready(client: TestClient, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or response.json()["status"] == "failed":
            body: dict[str, Any] = response.json()
            return body
        assert time.monotonic() < deadline, f"not ready after {timeout}s: {response.json()}"
        time.sleep(0.05)


def test_predict_one_row_answers_price_with_a_new_request_id(client: TestClient, sink: RecordingSink) -> None:
    response = client.post("/predict/regression", json=ROW)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "regression"
    assert uuid.UUID(body["request_id"]).version == 4
    assert response.headers["x-request-id"] == body["request_id"]
    assert 200 < body["prediction"] < 2000  # a 0.31 carat diamond
    assert "probability" not in body
    [sent] = sink.rows["diamonds_regression"]
    assert sent == {"request_id": body["request_id"], **ROW, "prediction": body["prediction"]}


def test_predict_keeps_the_callers_request_id(client: TestClient) -> None:
    in_body = client.post("/predict/regression", json={**ROW, "request_id": "r-1"})
    in_header = client.post("/predict/regression", json=ROW, headers={"X-Request-ID": "r-2"})
    assert in_body.json()["request_id"] == "r-1"
    assert in_header.json()["request_id"] == "r-2"
    assert in_header.headers["x-request-id"] == "r-2"


def test_predict_many_rows_answers_in_order_with_probabilities(
    client: TestClient, sink: RecordingSink
) -> None:
    rows = [ROW, {**BIG_ROW, "request_id": "mine"}, ROW]
    response = client.post("/predict/classification", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "classification"
    predictions = body["predictions"]
    assert [p["prediction"] for p in predictions] == [0, 1, 0]
    assert predictions[1]["request_id"] == "mine"
    assert len({p["request_id"] for p in predictions}) == 3
    for p in predictions:
        assert 0.0 <= p["probability"] <= 1.0
        assert p["prediction"] == int(p["probability"] >= 0.5)
    sent = sink.rows["diamonds_classification"]
    assert [r["request_id"] for r in sent] == [p["request_id"] for p in predictions]
    assert [r[PROBABILITY_COLUMN] for r in sent] == [p["probability"] for p in predictions]


def test_predict_scores_missing_values_and_unseen_categories(client: TestClient, sink: RecordingSink) -> None:
    row = {**ROW, "carat": None, "cut": "Excellent", "color": None}
    response = client.post("/predict/regression", json=row)
    assert response.status_code == 200, response.text
    [sent] = sink.rows["diamonds_regression"]
    assert sent["carat"] is None and sent["cut"] == "Excellent" and sent["color"] is None


def test_predict_rows_sent_to_the_monitor_fit_the_stack_config(
    client: TestClient, sink: RecordingSink
) -> None:
    config = load_config(REPO / "config" / "stack.yaml", environ={})
    for model in ("regression", "classification"):
        body = {"rows": [ROW, BIG_ROW, {**ROW, "depth": None, "clarity": "I2"}]}
        assert client.post(f"/predict/{model}", json=body).status_code == 200
        monitor_model = config.model(f"diamonds_{model}")
        assert monitor_model is not None
        batch = validate_rows(sink.rows[monitor_model.name], RowSchema.from_model(monitor_model), time.time())
        assert batch.rows == 3


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**ROW, "carat": "heavy"}, ["body", "carat"]),
        ({**ROW, "carat": True}, ["body", "carat"]),
        ({k: v for k, v in ROW.items() if k != "cut"}, ["body", "cut"]),
        ({**ROW, "price": 512.0}, ["body", "price"]),
        ({**ROW, "cut": "x" * 65}, ["body", "cut"]),
        ({**ROW, "request_id": ""}, ["body", "request_id"]),
        ({"rows": []}, ["body", "rows"]),
        ({"rows": [ROW, {**ROW, "x": "wide"}]}, ["body", "rows", 1, "x"]),
        ([ROW], ["body"]),
    ],
)
def test_predict_rejects_bad_input_with_422(
    client: TestClient, sink: RecordingSink, body: Any, loc: list[Any]
) -> None:
    response = client.post("/predict/regression", json=body)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert not sink.rows


def test_predict_answers_404_400_413_for_unknown_model_bad_json_and_big_batches(client: TestClient) -> None:
    assert client.post("/predict/ranking", json=ROW).status_code == 404
    bad = client.post(
        "/predict/regression", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert client.post("/predict/regression", json={"rows": [ROW] * 51}).status_code == 413


def test_metrics_count_requests_errors_sizes_and_monitor_items(client: TestClient) -> None:
    assert client.post("/predict/regression", json={"rows": [ROW, ROW]}).status_code == 200
    assert client.post("/predict/regression", json={**ROW, "carat": "heavy"}).status_code == 422
    assert client.post("/predict/ranking", json=ROW).status_code == 404
    samples = _samples(client)

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    assert value("model_service_requests_total", model="regression", status="200") == 1
    assert value("model_service_requests_total", model="regression", status="422") == 1
    assert value("model_service_requests_total", model="unknown", status="404") == 1
    assert value("model_service_errors_total", model="regression", reason="validation") == 1
    assert value("model_service_errors_total", model="unknown", reason="unknown_model") == 1
    assert value("model_service_predictions_total", model="regression") == 2
    assert value("model_service_request_duration_seconds_count", model="regression") == 2
    assert (value("model_service_request_body_bytes_sum", model="regression") or 0) > 100
    assert (value("model_service_response_body_bytes_sum", model="regression") or 0) > 100
    assert value("model_service_monitor_reporting_enabled") == 1
    assert value("model_service_monitor_items_total", outcome="sent") == 2
    assert value("process_resident_memory_bytes") is not None


def test_health_and_readiness_once_models_load_in_the_background(
    model_dir: Path, sink: RecordingSink
) -> None:
    with TestClient(create_app(Settings(model_dir=model_dir), monitor=sink)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = _poll_ready(client)
        assert ready["status"] == "ready"
        assert ready["models"] == {
            "regression": "diamonds_regression",
            "classification": "diamonds_classification",
            "price_band": "diamonds_price_band",
        }
        assert client.post("/predict/regression", json=ROW).status_code == 200
    assert not sink.closed  # the caller's sink is the caller's to close


def test_readiness_reports_missing_models_when_training_is_off(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "none", train_if_missing=False)
    with TestClient(create_app(settings)) as client:
        ready = _poll_ready(client)
        assert ready["status"] == "failed" and "FileNotFoundError" in ready["error"]
        assert client.get("/readyz").status_code == 503
        assert client.post("/predict/regression", json=ROW).status_code == 503
        assert client.get("/healthz").status_code == 200
        samples = _samples(client)
    assert samples[("model_service_monitor_reporting_enabled", frozenset())] == 0


def test_openapi_documents_the_prediction_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict/{model}"]["post"]["requestBody"]["content"]["application/json"]
    assert [s.get("title") for s in body["schema"]["oneOf"]] == ["DiamondRow", "PredictBatch"]
    assert set(FEATURES) <= set(body["schema"]["oneOf"][0]["properties"])
