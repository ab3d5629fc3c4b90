"""Every domain error carries its status, its reason (a fixed vocabulary) and its headers."""

from __future__ import annotations

import pytest

from monitor_service.errors import (
    BadRequest,
    CalculationFailed,
    ConfigError,
    FieldError,
    LabelsNotConfigured,
    MonitorError,
    PayloadTooLarge,
    RateLimited,
    ReloadNeedsRestart,
    ReportUnavailable,
    StorageUnavailable,
    Unauthorized,
    UnknownModel,
    UnsupportedMediaType,
    ValidationFailed,
    WindowEmpty,
)


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (ValidationFailed([FieldError(("body",), "bad", "value_error")]), 422, "validation"),
        (UnknownModel("m"), 404, "unknown_model"),
        (BadRequest("not JSON"), 400, "bad_request"),
        (UnsupportedMediaType("text/plain"), 415, "unsupported_media_type"),
        (PayloadTooLarge("big"), 413, "body_too_large"),
        (PayloadTooLarge("many", "too_many_rows", 20_000), 413, "too_many_rows"),
        (Unauthorized(), 401, "unauthorized"),
        (ConfigError("file", ["a: b"]), 422, "invalid_config"),
        (WindowEmpty("m"), 409, "window_empty"),
        (LabelsNotConfigured("m"), 409, "labels_not_configured"),
        (ReportUnavailable("no"), 409, "report_unavailable"),
        (ReloadNeedsRestart("no"), 409, "restart_needed"),
        (RateLimited("slow down", 1.2, 10), 429, "rate_limited"),
        (StorageUnavailable(detail="/data/x: ENOSPC"), 503, "storage_unavailable"),
        (CalculationFailed("boom"), 500, "calculation_failed"),
    ],
)
def test_error_carries_status_and_reason(error: MonitorError, status: int, reason: str) -> None:
    assert (error.status, error.reason) == (status, reason)
    body = error.body()
    assert body.get("reason", reason) == reason


def test_error_headers_tell_clients_what_to_do() -> None:
    assert RateLimited("slow down", 1.2).headers == {"Retry-After": "2"}
    assert StorageUnavailable().headers == {"Retry-After": "5"}
    assert Unauthorized().headers == {"WWW-Authenticate": "Bearer"}
    assert UnknownModel("m").headers == {}


def test_storage_error_keeps_paths_out_of_what_clients_see() -> None:
    error = StorageUnavailable(detail="cannot write /var/lib/drift/m: No space left")
    assert "/var/lib" not in str(error) and "/var/lib" not in str(error.body())
    assert "No space left" in error.detail


def test_rows_of_a_refused_request_are_known_for_the_counters() -> None:
    assert PayloadTooLarge("many", "too_many_rows", 20_000).rows == 20_000
    assert ValidationFailed([], 3, 250).rows == 250
    assert UnknownModel("m").rows == 0
