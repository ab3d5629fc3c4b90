"""Domain errors. Each class carries its HTTP status, its `reason` (the value of the `reason` label
on the rejection counters and in error bodies), its headers, and the offending input, so the API
has one handler and no `isinstance` ladder.

Reasons are a fixed vocabulary (metric-label cardinality): never built from request data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar


class MonitorError(Exception):
    """Base class of every error the monitor raises on purpose."""

    status: ClassVar[int] = 400
    reason: str = "bad_request"

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        return {"detail": str(self), "reason": self.reason}

    @property
    def rows(self) -> int:
        """Rows the refused request carried, when that is known (for the rejected-rows counter)."""
        return 0


@dataclass
class FieldError:
    """One problem with one place of the input, in FastAPI's error shape."""

    loc: tuple[str | int, ...]
    msg: str
    type: str
    input: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type, "input": self.input}


@dataclass
class ValidationFailed(MonitorError):
    """A batch of rows (or another body) does not match the model's columns."""

    status = 422
    reason = "validation"
    errors: list[FieldError]
    total_errors: int = 0
    row_count: int = 0

    def __post_init__(self) -> None:
        self.total_errors = max(self.total_errors, len(self.errors))

    def __str__(self) -> str:
        return f"{self.total_errors} validation error(s), first: {self.errors[0].msg if self.errors else ''}"

    @property
    def rows(self) -> int:
        return self.row_count

    def body(self) -> dict[str, Any]:
        return {"detail": [e.as_dict() for e in self.errors], "error_count": self.total_errors}


@dataclass
class UnknownModel(MonitorError):
    status = 404
    reason = "unknown_model"
    name: str

    def __str__(self) -> str:
        shown = self.name if len(self.name) <= 64 else self.name[:64] + "..."
        return f"unknown model {shown!r}"


@dataclass
class NotFound(MonitorError):
    """Something the request names does not exist (a stored report, ...)."""

    status = 404
    reason = "not_found"
    msg: str

    def __str__(self) -> str:
        return self.msg


@dataclass
class BadRequest(MonitorError):
    """The body cannot be read at all (malformed JSON or NDJSON, an unreadable file)."""

    msg: str

    def __str__(self) -> str:
        return self.msg


@dataclass
class UnsupportedMediaType(MonitorError):
    """A content type (or content encoding) the endpoint does not read."""

    status = 415
    reason = "unsupported_media_type"
    msg: str

    def __str__(self) -> str:
        return self.msg


@dataclass
class PayloadTooLarge(MonitorError):
    """A body over `max_body_bytes` (reason body_too_large) or a batch over `max_rows_per_request`
    (reason too_many_rows)."""

    status = 413
    msg: str
    reason: str = "body_too_large"
    row_count: int = 0

    def __str__(self) -> str:
        return self.msg

    @property
    def rows(self) -> int:
        return self.row_count


@dataclass
class Unauthorized(MonitorError):
    """A missing or wrong bearer token. The message never says which token was expected."""

    status = 401
    reason = "unauthorized"
    msg: str = "missing or wrong bearer token"

    def __str__(self) -> str:
        return self.msg

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


@dataclass
class ConfigError(MonitorError):
    """A configuration file is invalid; `problems` lists every `path: message` found."""

    status = 422
    reason = "invalid_config"
    source: str
    problems: list[str]

    def __str__(self) -> str:
        lines = "\n".join(f"  {p}" for p in self.problems)
        return f"{self.source}: {len(self.problems)} configuration error(s)\n{lines}"

    def body(self) -> dict[str, Any]:
        return {"detail": self.problems, "reason": self.reason}


@dataclass
class Conflict(MonitorError):
    """The request is valid but cannot be done in the model's present state (409)."""

    status = 409
    msg: str
    reason: str = "conflict"

    def __str__(self) -> str:
        return self.msg


class WindowEmpty(Conflict):
    """A calculation or report of a window that holds no rows yet."""

    def __init__(self, model: str) -> None:
        super().__init__(f"the window of model {model!r} holds no rows yet", "window_empty")


class LabelsNotConfigured(Conflict):
    """Labels sent to a model without id and target columns to join them on."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} declares no id and target columns to join labels on", "labels_not_configured"
        )


class ReportUnavailable(Conflict):
    """Evidently cannot render a report of this window (the reason is in the message)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, "report_unavailable")


class ReloadNeedsRestart(Conflict):
    """A reloaded config changes what only a restart can change; nothing was applied."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, "restart_needed")


class _RetryLater:
    """A refusal for now: `row_count` rows refused, retry after `retry_after` seconds (mixed into
    the dataclasses below, which hold the fields)."""

    msg: str
    retry_after: float
    row_count: int

    def __str__(self) -> str:
        return self.msg

    @property
    def rows(self) -> int:
        return self.row_count

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


@dataclass
class RateLimited(_RetryLater, MonitorError):
    """The model's ingest rate limit is exhausted for now."""

    status = 429
    reason = "rate_limited"
    msg: str
    retry_after: float
    row_count: int = 0


@dataclass
class StorageUnavailable(_RetryLater, MonitorError):
    """The durable log cannot be written (disk full, unwritable): nothing was acknowledged.

    `msg` goes to clients and never names a path; `detail` (for the log) may.
    """

    status = 503
    reason = "storage_unavailable"
    msg: str = "the durable log cannot be written; nothing was stored"
    detail: str = field(default="", repr=False)
    retry_after: float = 5
    row_count: int = 0


@dataclass
class CalculationFailed(MonitorError):
    """A calculation raised; it was logged with its traceback and counted."""

    status = 500
    reason = "calculation_failed"
    msg: str

    def __str__(self) -> str:
        return self.msg


class SnapshotUnreadable(MonitorError):
    """A saved window checkpoint cannot be read; it was moved aside and start-up stops unless
    data loss is accepted explicitly (the log segments it covered are gone)."""

    status = 500
    reason = "checkpoint_unreadable"
