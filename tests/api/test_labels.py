from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import rows_of

ROWS = "/v1/models/diamonds/rows"
LABELS = "/v1/models/diamonds/labels"


def _unlabelled(count: int, start: int = 0) -> list[dict[str, Any]]:
    rows = rows_of("production", count, start)
    for row in rows:
        del row["price"]
    return rows


def _sample(client: TestClient, name: str) -> float | None:
    value: float | None = client.app.state.registry.get_sample_value(name, {"model": "diamonds"})  # type: ignore[attr-defined]
    return value


def test_labels_join_rows_in_window_and_give_model_quality(client: TestClient) -> None:
    rows = _unlabelled(300)
    client.post(ROWS, json={"rows": rows})
    truth = rows_of("production", 300)
    labels = [{"id": r["request_id"], "target": r["price"]} for r in truth[:200]]
    response = client.post(LABELS, json={"labels": labels})
    assert response.status_code == 202
    assert response.json() == {
        "model": "diamonds",
        "accepted": 200,
        "matched": 200,
        "pending": 0,
        "duplicates": 0,
    }
    result = client.post("/v1/models/diamonds/calculate").json()
    assert result["labelled_rows"] == 200
    expected_mae = sum(abs(r["price"] - r["prediction"]) for r in truth[:200]) / 200
    assert result["model_quality"]["mae"] == pytest.approx(expected_mae)
    registry = client.app.state.registry  # type: ignore[attr-defined]
    assert registry.get_sample_value(
        "drift_monitor_model_quality", {"model": "diamonds", "metric": "mae"}
    ) == (pytest.approx(expected_mae))
    assert _sample(client, "drift_monitor_labelled_rows") == 200
    assert _sample(client, "drift_monitor_labels_matched_total") == 200


def test_labels_before_their_rows_wait_and_join_later(client: TestClient) -> None:
    truth = rows_of("production", 20)
    early = client.post(
        LABELS, json={"labels": [{"id": r["request_id"], "target": r["price"]} for r in truth]}
    )
    assert early.json()["pending"] == 20
    assert _sample(client, "drift_monitor_labels_pending") == 20
    client.post(ROWS, json={"rows": _unlabelled(20)})
    assert _sample(client, "drift_monitor_labels_pending") == 0
    assert _sample(client, "drift_monitor_labels_matched_total") == 20
    result = client.post("/v1/models/diamonds/calculate").json()
    assert result["labelled_rows"] == 20


def test_labels_for_unknown_ids_stay_pending_and_a_repeated_id_counts_once(client: TestClient) -> None:
    client.post(ROWS, json={"rows": _unlabelled(5)})
    body = {
        "labels": [
            {"id": "d-0", "target": 1.0},
            {"id": "nope", "target": 3.0},
            {"id": "d-0", "target": 2.0},
            {"id": "nope", "target": 4.0},
        ]
    }
    assert client.post(LABELS, json=body).json() == {
        "model": "diamonds",
        "accepted": 4,
        "matched": 1,
        "pending": 1,
        "duplicates": 2,
    }
    assert _sample(client, "drift_monitor_labels_matched_total") == 1
    assert _sample(client, "drift_monitor_labels_pending") == 1
    state = client.app.state.service.models["diamonds"]  # type: ignore[attr-defined]
    frame = pd.DataFrame(state.window_rows(time.time()).columns)
    assert frame.loc[frame["request_id"] == "d-0", "price"].tolist() == [2.0]
    client.post(ROWS, json={"rows": [{**_unlabelled(1)[0], "request_id": "nope"}]})
    frame = pd.DataFrame(state.window_rows(time.time()).columns)
    assert frame.loc[frame["request_id"] == "nope", "price"].tolist() == [4.0]  # the last one wins


@pytest.mark.parametrize(
    ("labels", "loc"),
    [
        ([{"id": "a"}], ["body", "labels", 0, "target"]),
        ([{"id": None, "target": 1}], ["body", "labels", 0, "id"]),
        ([{"id": "a", "target": "expensive"}], ["body", "labels", 0, "target"]),
        ([{"id": "a", "target": 1, "extra": 2}], ["body", "labels", 0, "extra"]),
        (["a"], ["body", "labels", 0]),
    ],
)
def test_labels_reject_bad_items_with_location(client: TestClient, labels: list[Any], loc: list[Any]) -> None:
    response = client.post(LABELS, json={"labels": labels})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    assert _sample(client, "drift_monitor_labels_received_total") == 0


def test_labels_unknown_model_is_404(client: TestClient) -> None:
    assert (
        client.post("/v1/models/nope/labels", json={"labels": [{"id": "a", "target": 1}]}).status_code == 404
    )
