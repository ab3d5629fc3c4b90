"""Immutable calculation results and the per-model status the API and the collector read."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Role = Literal["feature", "target", "prediction"]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    role: Role
    stattest: str
    score: float
    threshold: float
    detected: bool


@dataclass(frozen=True)
class ColumnQuality:
    column: str
    role: Role
    missing_current: float
    missing_reference: float
    out_of_range: float | None = None
    new_category: float | None = None


@dataclass(frozen=True)
class SkippedColumn:
    column: str
    role: Role
    reason: str


TestStatus = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class TestOutcome:
    """One pass/fail test of a calculation (engine/tests_suite.py). `skip`: not testable here, e.g.
    a column without values, or a window too small for the condition to mean anything."""

    __test__ = False  # not a pytest class

    name: str
    kind: str
    column: str | None
    status: TestStatus
    critical: bool
    value: float | None
    description: str


@dataclass(frozen=True)
class CalculationResult:
    model: str
    finished_at: float
    duration_seconds: float
    current_rows: int
    reference_rows: int
    drift_share: float
    dataset_drift: bool | None
    drifted_columns: int
    tested_columns: int
    columns: tuple[ColumnDrift, ...] = ()
    quality: tuple[ColumnQuality, ...] = ()
    skipped: tuple[SkippedColumn, ...] = ()
    model_quality: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    tests: tuple[TestOutcome, ...] = ()

    @property
    def failed_tests(self) -> list[TestOutcome]:
        return [t for t in self.tests if t.status == "fail"]

    @property
    def drifted_ratio(self) -> float:
        return self.drifted_columns / self.tested_columns if self.tested_columns else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_columns_ratio"] = self.drifted_ratio
        return _json_safe(out)


def _json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON: report them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


Status = Literal["waiting", "ok", "failed"]


@dataclass(frozen=True)
class ModelStatus:
    """What is known about one model's calculations. Replaced whole, never mutated."""

    latest: CalculationResult | None = None
    status: Status = "waiting"
    last_attempt_at: float | None = None
    last_error: str | None = None
    calculations: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "last_attempt_at": self.last_attempt_at,
            "last_success_at": self.latest.finished_at if self.latest else None,
            "last_error": self.last_error,
            "calculations": self.calculations,
            "errors": self.errors,
        }


class ResultStore:
    """Latest status per model; readers get an immutable snapshot without waiting on calculations."""

    def __init__(self, models: list[str]) -> None:
        self._status = {name: ModelStatus() for name in models}
        self._lock = threading.Lock()

    def get(self, model: str) -> ModelStatus:
        return self._status[model]

    def items(self) -> list[tuple[str, ModelStatus]]:
        return list(self._status.items())

    def record_success(self, result: CalculationResult) -> None:
        with self._lock:
            old = self._status[result.model]
            self._status[result.model] = replace(
                old,
                latest=result,
                status="ok",
                last_attempt_at=result.finished_at,
                last_error=None,
                calculations=old.calculations + 1,
            )

    def record_failure(self, model: str, at: float, error: str) -> None:
        """Count the failure; the last good result stays published."""
        with self._lock:
            old = self._status[model]
            self._status[model] = replace(
                old,
                status="failed",
                last_attempt_at=at,
                last_error=error,
                calculations=old.calculations + 1,
                errors=old.errors + 1,
            )
