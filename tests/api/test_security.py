from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import DIAMONDS, diamonds_model, rows_of, write_config

TOKENS = {
    "ingest_token": "ingest-secret-1",
    "admin_token": "admin-secret-2",
    "metrics_token": "metrics-secret-3",
}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[TestClient]:
    path = write_config(tmp_path / "m.yaml", [diamonds_model()], protect_probes=True, **TOKENS)
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


ENDPOINTS = [
    # (method, path, body kwargs, token that opens it, tokens that must not)
    (
        "post",
        "/v1/models/diamonds/rows",
        {"json": {"rows": rows_of("production", 3)}},
        "ingest_token",
        ["metrics_token"],
    ),
    (
        "post",
        "/v1/models/diamonds/labels",
        {"json": {"labels": [{"id": "d-0", "target": 1.0}]}},
        "ingest_token",
        ["metrics_token"],
    ),
    ("post", "/v1/models/diamonds/calculate", {}, "admin_token", ["ingest_token", "metrics_token"]),
    (
        "put",
        "/v1/models/diamonds/reference",
        {"content": (DIAMONDS / "reference.csv").read_bytes(), "headers": {"content-type": "text/csv"}},
        "admin_token",
        ["ingest_token", "metrics_token"],
    ),
    ("get", "/v1/models/diamonds/window", {}, "admin_token", ["ingest_token", "metrics_token"]),
    ("get", "/v1/models/diamonds/report", {}, "admin_token", ["ingest_token", "metrics_token"]),
    ("get", "/metrics", {}, "metrics_token", ["ingest_token", "admin_token"]),
    ("get", "/healthz", {}, "metrics_token", ["ingest_token", "admin_token"]),
    ("get", "/readyz", {}, "metrics_token", ["ingest_token", "admin_token"]),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "opener", "others"), ENDPOINTS, ids=[e[1] + e[0] for e in ENDPOINTS]
)
def test_protected_endpoint_needs_its_token(
    secured: TestClient, method: str, path: str, kwargs: dict[str, object], opener: str, others: list[str]
) -> None:
    if path.endswith(("calculate", "report")):
        secured.post(
            "/v1/models/diamonds/rows",
            json={"rows": rows_of("production", 3)},
            headers=_bearer(TOKENS["ingest_token"]),
        )
    call = getattr(secured, method)
    headers = dict(kwargs.get("headers", {}))  # type: ignore[call-overload]
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    missing = call(path, headers=headers, **rest)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    for wrong in [*others, "nonsense"]:
        token = TOKENS.get(wrong, wrong)
        assert call(path, headers={**headers, **_bearer(token)}, **rest).status_code == 401, wrong
    assert (
        call(path, headers={**headers, "authorization": TOKENS[opener]}, **rest).status_code == 401
    )  # no scheme
    opened = call(path, headers={**headers, **_bearer(TOKENS[opener])}, **rest)
    assert opened.status_code < 300, opened.text


def test_admin_token_also_opens_ingestion(secured: TestClient) -> None:
    response = secured.post(
        "/v1/models/diamonds/rows",
        json={"rows": rows_of("production", 2)},
        headers=_bearer(TOKENS["admin_token"]),
    )
    assert response.status_code == 202


def test_tokens_never_appear_in_logs_or_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = write_config(tmp_path / "m.yaml", [diamonds_model(task="nonsense")], **TOKENS)
    with pytest.raises(Exception) as caught:
        load_config(path, environ={})
    path = write_config(tmp_path / "m.yaml", [diamonds_model()], **TOKENS)
    config = load_config(path, environ={})
    with TestClient(create_app(config, start_scheduler=False)) as client:
        client.post("/v1/models/diamonds/rows", json={"rows": [{"x": 1}]}, headers=_bearer("guess"))
        client.post(
            "/v1/models/diamonds/rows", json={"rows": [{"x": 1}]}, headers=_bearer(TOKENS["ingest_token"])
        )
    text = caplog.text + str(caught.value) + repr(config)
    for secret in TOKENS.values():
        assert secret not in text


def test_rate_limit_answers_429_and_keeps_window(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "m.yaml",
        [diamonds_model()],
        max_rows_per_second=1,
        max_rows_per_request=100,
        burst_seconds=1,
    )
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        assert (
            client.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 100)}).status_code
            == 202
        )
        limited = client.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 50, start=100)})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/v1/models").json()["models"][0]["window_rows"] == 100
        registry = client.app.state.registry  # type: ignore[attr-defined]
        labels = {"model": "diamonds", "reason": "rate_limited"}
        assert registry.get_sample_value("drift_monitor_rows_rejected_total", labels) == 50


def test_metric_label_values_come_only_from_config(client: TestClient) -> None:
    hostile = {**rows_of("production", 1)[0], "cut": 'Ideal"} evil{x="1', "request_id": 'model="x"'}
    client.post("/v1/models/diamonds/rows", json={"rows": [hostile, *rows_of("production", 200)]})
    client.post("/v1/models/nope%0Aevil/rows", json={"rows": [hostile]})
    client.post("/v1/models/diamonds/rows", json={"rows": [{"unknown_column": 1}]})
    client.post("/v1/models/diamonds/calculate")
    allowed = {
        "diamonds",
        "",
        *diamonds_model()["columns"]["numerical"],
        *diamonds_model()["columns"]["categorical"],
        "price",
        "prediction",
    }
    families = text_string_to_metric_families(client.get("/metrics").text)
    for family in families:
        for sample in family.samples:
            for key in ("model", "column"):
                if key in sample.labels:
                    assert sample.labels[key] in allowed, (sample.name, sample.labels)
