"""Schemathesis against the app's own OpenAPI schema: no 5xx anywhere, every answer as documented.

Each test gets a fresh app (thread executor, no scheduler) whose lifespan schemathesis runs in
process. Every documented operation is fuzzed with schema-valid requests, and those with a body or
query parameters also with schema-violating ones; once with the `model` path parameter as generated
(mostly unknown models) and once pinned to the configured model, so bodies reach validation, the
window and the calculations. `positive_data_acceptance` is left out: the row, label and reference
schemas cannot name one model's columns, so most schema-valid bodies are rightly refused (422).

Hypothesis strategies from `APIOperation.as_strategy` are used directly instead of
`schemathesis.pytest.from_fixture`: its lazy loader sets `request.node._nodeid`, which pytest 9.2
no longer has (AttributeError at every test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.python.asgi import shutdown_lifespans

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import diamonds_model, write_config

MODEL = "diamonds"
# Every documented operation; test_fuzz_covers_every_documented_operation fails when one is added.
OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/models/{model}/rows"),
    ("POST", "/v1/models/{model}/labels"),
    ("GET", "/v1/models/{model}/results"),
    ("POST", "/v1/models/{model}/calculate"),
    ("GET", "/v1/models/{model}/report"),
    ("GET", "/v1/models/{model}/reports"),
    ("GET", "/v1/models/{model}/window"),
    ("PUT", "/v1/models/{model}/reference"),
    ("POST", "/v1/admin/reload"),
]
# Operations with something to violate besides the unconstrained `model` (a body or a query).
NEGATABLE = [
    ("POST", "/v1/models/{model}/rows"),
    ("POST", "/v1/models/{model}/labels"),
    ("GET", "/v1/models/{model}/window"),
    ("PUT", "/v1/models/{model}/reference"),
]
TOKENS = {
    "ingest_token": "ingest-secret",
    "admin_token": "admin-secret",
    "metrics_token": "metrics-secret",
    "protect_probes": True,
}
FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    """The NDJSON bodies are documented as strings (one JSON row per line): sent as they are."""
    return value if isinstance(value, bytes) else str(value).encode()


def _api(tmp_path: Path, **server: Any) -> schemathesis.BaseSchema:
    path = write_config(tmp_path / "monitor.yaml", [diamonds_model()], **server)
    app = create_app(load_config(path, environ={}), config_path=path, start_scheduler=False)
    # With tokens, the description itself needs the read (or admin) token.
    headers = {"Authorization": f"Bearer {server['admin_token']}"} if "admin_token" in server else {}
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    yield _api(tmp_path)
    shutdown_lifespans()  # runs the app's shutdown: its monitor and calculation thread stop


@pytest.fixture
def protected_api(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    yield _api(tmp_path, **TOKENS)
    shutdown_lifespans()


def _fuzz(
    api: schemathesis.BaseSchema,
    operation: tuple[str, str],
    mode: GenerationMode,
    *,
    pinned: bool,
    max_examples: int | None = None,
) -> None:
    method, path = operation
    fixed = {"model": MODEL} if pinned and "{model}" in path else None

    @settings(FUZZ, max_examples=max_examples or FUZZ.max_examples)
    @given(case=api[path][method].as_strategy(mode, path_parameters=fixed))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])

    run()


def _ids(operations: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in operations]


def test_fuzz_covers_every_documented_operation(api: schemathesis.BaseSchema) -> None:
    documented = {(op.ok().method.upper(), op.ok().path) for op in api.get_all_operations()}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids(OPERATIONS))
def test_api_answers_schema_valid_requests_without_5xx_and_as_documented(
    api: schemathesis.BaseSchema, operation: tuple[str, str]
) -> None:
    _fuzz(api, operation, GenerationMode.POSITIVE, pinned=False)


@pytest.mark.parametrize("operation", NEGATABLE, ids=_ids(NEGATABLE))
def test_api_rejects_schema_violating_requests_without_5xx_and_as_documented(
    api: schemathesis.BaseSchema, operation: tuple[str, str]
) -> None:
    _fuzz(api, operation, GenerationMode.NEGATIVE, pinned=False)


MODEL_OPERATIONS = [op for op in OPERATIONS if "{model}" in op[1]]


@pytest.mark.parametrize("operation", MODEL_OPERATIONS, ids=_ids(MODEL_OPERATIONS))
def test_api_answers_schema_valid_requests_for_the_configured_model_as_documented(
    api: schemathesis.BaseSchema, operation: tuple[str, str]
) -> None:
    _fuzz(api, operation, GenerationMode.POSITIVE, pinned=True)


@pytest.mark.parametrize("operation", NEGATABLE, ids=_ids(NEGATABLE))
def test_api_rejects_schema_violating_requests_for_the_configured_model_as_documented(
    api: schemathesis.BaseSchema, operation: tuple[str, str]
) -> None:
    _fuzz(api, operation, GenerationMode.NEGATIVE, pinned=True)


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids(OPERATIONS))
def test_api_documents_its_answers_when_tokens_are_configured(
    protected_api: schemathesis.BaseSchema, operation: tuple[str, str]
) -> None:
    """With every token set and none sent, protected operations answer 401: it must be documented."""
    _fuzz(protected_api, operation, GenerationMode.POSITIVE, pinned=True, max_examples=5)


MALFORMED = [
    ("POST", "/v1/models/{model}/rows", "application/json", b'{"rows": ['),
    ("POST", "/v1/models/{model}/rows", "application/x-ndjson", b"{oops\n"),
    ("POST", "/v1/models/{model}/labels", "application/json", b"\x00"),
    ("PUT", "/v1/models/{model}/reference", "text/csv", b'"'),
]


@pytest.mark.parametrize(
    ("method", "path", "media_type", "body"), MALFORMED, ids=[f"{m} {p} {t}" for m, p, t, _ in MALFORMED]
)
def test_api_documents_its_answer_to_unreadable_bodies(
    api: schemathesis.BaseSchema, method: str, path: str, media_type: str, body: bytes
) -> None:
    """Random generation may or may not hit these within its budget; the answer (400) must be documented."""
    case = api[path][method].Case(path_parameters={"model": MODEL}, body=body, media_type=media_type)
    response = case.call()
    assert response.status_code == 400
    case.validate_response(response, excluded_checks=[checks.positive_data_acceptance])
