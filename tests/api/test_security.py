from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor_service.app import create_app
from monitor_service.cli import main
from monitor_service.config import config_warnings, load_config
from monitor_service.errors import ConfigError
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
    if path.endswith("report"):  # a calculation stores the report /report serves
        calculated = secured.post("/v1/models/diamonds/calculate", headers=_bearer(TOKENS["admin_token"]))
        assert calculated.status_code == 200, calculated.text
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


# --- hardening (blank and short tokens, reads, names, files, hosts) ---------------------------


@pytest.mark.parametrize("text", ["admin_token:\n", "admin_token: ''\n", "ingest_token: '   '\n"])
def test_blank_token_in_a_token_file_is_refused(tmp_path: Path, text: str) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(text)
    path = write_config(tmp_path / "m.yaml", [diamonds_model()])
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"DRIFT_MONITOR_TOKEN_FILE": str(tokens)})
    assert "None" not in str(caught.value)
    assert "token" in str(caught.value)


def test_empty_token_in_config_or_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="non-empty"):
        load_config(write_config(tmp_path / "m.yaml", [diamonds_model()], ingest_token=""), environ={})
    path = write_config(tmp_path / "m.yaml", [diamonds_model()])
    with pytest.raises(ConfigError, match="non-empty"):
        load_config(path, environ={"DRIFT_MONITOR_ADMIN_TOKEN": ""})


def test_short_token_is_a_warning_said_by_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "m.yaml", [diamonds_model()], admin_token="short")
    assert any("admin_token: shorter than 16" in w for w in config_warnings(load_config(path, environ={})))
    assert main(["check-config", str(path)]) == 0
    assert "warning: server.admin_token: shorter than 16 characters" in capsys.readouterr().err


def test_bearer_with_nothing_after_it_opens_nothing(secured: TestClient) -> None:
    for header in ("Bearer", "Bearer ", "Bearer None"):
        response = secured.post(
            "/v1/models/diamonds/rows",
            json={"rows": rows_of("production", 1)},
            headers={"authorization": header},
        )
        assert response.status_code == 401, header


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/diamonds/results"])
def test_reads_need_the_read_or_admin_token_when_one_is_set(tmp_path: Path, path: str) -> None:
    config = write_config(
        tmp_path / "m.yaml", [diamonds_model()], read_token="read-secret-4-xxxxxxxx", **TOKENS
    )
    with TestClient(create_app(load_config(config, environ={}), start_scheduler=False)) as client:
        assert client.get(path).status_code == 401
        assert client.get(path, headers=_bearer(TOKENS["ingest_token"])).status_code == 401
        assert client.get(path, headers=_bearer("read-secret-4-xxxxxxxx")).status_code == 200
        assert client.get(path, headers=_bearer(TOKENS["admin_token"])).status_code == 200


def test_reads_stay_open_without_read_or_admin_token(client: TestClient) -> None:
    assert client.get("/v1/models").status_code == 200


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a..b", "a/b", "a\\b"])
def test_model_names_that_could_leave_the_data_directory_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="name"):
        load_config(write_config(tmp_path / "m.yaml", [diamonds_model(name=name)]), environ={})


def test_reference_upload_is_capped_in_rows_before_it_is_read(tmp_path: Path) -> None:
    import io

    import pandas as pd

    path = write_config(tmp_path / "m.yaml", [diamonds_model()], max_reference_rows=1000)
    frame = pd.read_csv(DIAMONDS / "reference.csv").head(1001)
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        for content, media in (
            (body.getvalue(), "application/vnd.apache.parquet"),
            (frame.to_csv(index=False).encode(), "text/csv"),
        ):
            response = client.put(
                "/v1/models/diamonds/reference", content=content, headers={"content-type": media}
            )
            assert response.status_code == 413, response.text
            assert response.json()["reason"] == "too_many_rows"
        assert client.get("/v1/models").json()["models"][0]["reference_rows"] == 10_000


def test_window_export_refuses_repeated_column_names(client: TestClient) -> None:
    response = client.get("/v1/models/diamonds/window?columns=" + ",".join(["carat"] * 8000))
    assert response.status_code == 422
    assert response.json()["detail"][-1]["msg"] == "A column is named twice"


def test_allowed_hosts_refuses_other_host_headers(tmp_path: Path) -> None:
    path = write_config(tmp_path / "m.yaml", [diamonds_model()], allowed_hosts=["localhost", "127.0.0.1"])
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        assert client.get("/healthz", headers={"host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/healthz", headers={"host": "attacker.example"}).status_code == 400


def test_repeated_storage_failures_are_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import os

    path = write_config(tmp_path / "m.yaml", [diamonds_model()])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        journal = client.app.state.service.models["diamonds"].journal  # type: ignore[attr-defined]
        full = os.open("/dev/full", os.O_WRONLY)
        saved = os.dup(journal._fd)
        os.dup2(full, journal._fd)
        os.close(full)
        with caplog.at_level(logging.WARNING):
            codes = [
                client.post("/v1/models/diamonds/rows", json={"rows": rows_of("production", 1)}).status_code
                for _ in range(20)
            ]
        os.dup2(saved, journal._fd)
        os.close(saved)
    assert codes == [503] * 20
    assert sum("refused" in r.getMessage() for r in caplog.records) == 1
