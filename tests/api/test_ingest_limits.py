"""Ingest bodies that cost work without landing: hostile shapes and rejected bytes under the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import diamonds_model, rows_of, write_config

URL = "/v1/models/diamonds/rows"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    path = write_config(
        tmp_path / "m.yaml",
        [diamonds_model()],
        max_rows_per_second=100,
        burst_seconds=1,
        max_rows_per_request=100,
    )
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        yield client


def test_ingest_rejected_bytes_count_against_the_rate_limit(limited: TestClient) -> None:
    garbage = b'{"rows": [' + b"x" * 100_000
    assert limited.post(URL, content=garbage, headers={"content-type": "application/json"}).status_code == 400
    # 100 KB rejected cost more rows than the 1 s burst holds: the next request waits, body unread.
    refused = limited.post(URL, json={"rows": rows_of("production", 1)})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "rejected bodies" in refused.json()["detail"]
    assert limited.get("/v1/models").json()["models"][0]["window_rows"] == 0


def test_ingest_rejected_labels_count_against_the_rate_limit(limited: TestClient) -> None:
    bad = {"labels": [{"id": "x" * 2000, "target": 1.0, "extra": "y" * 40_000}] * 2}
    assert limited.post("/v1/models/diamonds/labels", json=bad).status_code == 422
    assert limited.post(URL, json={"rows": rows_of("production", 1)}).status_code == 429


def test_ingest_valid_batches_within_the_limit_are_not_charged_twice(limited: TestClient) -> None:
    assert limited.post(URL, json={"rows": rows_of("production", 50)}).status_code == 202
    assert limited.post(URL, json={"rows": rows_of("production", 40, start=50)}).status_code == 202


def test_ingest_nested_arrays_are_refused_as_too_complex(client: TestClient) -> None:
    body = b'{"rows": [{"carat": [' + b",".join([b"[]"] * 200_000) + b"]}]}"
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "too_complex"
    assert error["loc"] == ["body", "rows", 0]
