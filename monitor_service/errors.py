"""Domain errors. Each carries the offending input so the API layer can report it field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class MonitorError(Exception):
    """Base class of every error the monitor raises on purpose."""


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

    errors: list[FieldError]
    total_errors: int = 0
    rows: int = 0

    def __post_init__(self) -> None:
        self.total_errors = max(self.total_errors, len(self.errors))

    def __str__(self) -> str:
        return f"{self.total_errors} validation error(s), first: {self.errors[0].msg if self.errors else ''}"


@dataclass
class UnknownModel(MonitorError):
    name: str

    def __str__(self) -> str:
        return f"unknown model {self.name!r}"


@dataclass
class BadRequest(MonitorError):
    """The body cannot be read at all (malformed JSON, wrong content type)."""

    msg: str
    status: int = 400

    def __str__(self) -> str:
        return self.msg


@dataclass
class PayloadTooLarge(MonitorError):
    msg: str
    reason: str = "body_too_large"
    rows: int = 0

    def __str__(self) -> str:
        return self.msg


@dataclass
class ConfigError(MonitorError):
    """A configuration file is invalid; `problems` lists every `path: message` found."""

    source: str
    problems: list[str]

    def __str__(self) -> str:
        lines = "\n".join(f"  {p}" for p in self.problems)
        return f"{self.source}: {len(self.problems)} configuration error(s)\n{lines}"


class CalculationNotPossible(MonitorError):
    """A calculation cannot run yet (for example, the window holds no rows)."""


class CalculationFailed(MonitorError):
    """A calculation raised; it was logged with its traceback and counted."""


class StorageUnavailable(MonitorError):
    """The durable log cannot be written (disk full, unwritable): nothing was acknowledged."""


@dataclass
class RateLimited(MonitorError):
    """The model's ingest rate limit is exhausted for now."""

    msg: str
    retry_after: float
    rows: int = 0
    reason: str = "rate_limited"

    def __str__(self) -> str:
        return self.msg


class ReportUnavailable(MonitorError):
    """Evidently cannot render an HTML report of the current window (the reason is in the message)."""


class ReloadNeedsRestart(MonitorError):
    """A reloaded config changes what only a restart can change; nothing was applied."""
