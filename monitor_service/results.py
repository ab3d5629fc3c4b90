"""Immutable calculation results and the per-model status the API and the collector read."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from monitor_service.confirmation import ConfirmationSettings, ConfirmationState, Observation

Role = Literal["feature", "target", "prediction"]
Mode = Literal["tested", "legacy"]
# Why a column could not be tested (tested mode); legacy results keep Evidently's free text too.
UntestableReason = Literal["no_reference_values", "no_current_values", "test_failed"]
UNTESTABLE_REASONS: tuple[str, ...] = ("no_reference_values", "no_current_values", "test_failed")


@dataclass(frozen=True)
class MissingDrift:
    """Tested mode: the column's missing share compared between reference and window."""

    test: str
    p_value: float
    corrected_p_value: float
    reference_share: float
    current_share: float
    min_change: float
    detected: bool

    @property
    def change(self) -> float:
        return self.current_share - self.reference_share


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift. Legacy: `score` is the stat test's value against `threshold`. Tested:
    `score` is the raw p-value of `stattest`, `threshold` the alpha its corrected p-value is
    compared with, and the column drifts when that holds and the effect size reaches `min_effect`
    (or its missing share drifts)."""

    column: str
    role: Role
    stattest: str
    score: float
    threshold: float
    detected: bool
    p_value: float | None = None
    corrected_p_value: float | None = None
    effect: str | None = None
    effect_size: float | None = None
    min_effect: float | None = None
    distribution_detected: bool | None = None
    missing: MissingDrift | None = None


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
    """A column without a drift result. In tested mode `code` is one of UNTESTABLE_REASONS and the
    column counts as drifted in the dataset verdict; `model_quality` marks a target whose quality
    metrics could not be computed."""

    column: str
    role: Role
    reason: str
    code: str = "test_failed"


@dataclass(frozen=True)
class ColumnImportance:
    column: str
    importance: float


@dataclass(frozen=True)
class DomainClassifierResult:
    """The domain classifier: can a model tell window rows from reference rows?"""

    auc: float
    p_value: float
    alpha: float
    min_auc: float
    detected: bool
    reference_rows: int
    current_rows: int
    importances: tuple[ColumnImportance, ...] = ()
    top_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalculationResult:
    model: str
    finished_at: float
    duration_seconds: float
    current_rows: int
    reference_rows: int
    drift_share: float | None
    dataset_drift: bool | None
    drifted_columns: int
    tested_columns: int
    columns: tuple[ColumnDrift, ...] = ()
    quality: tuple[ColumnQuality, ...] = ()
    skipped: tuple[SkippedColumn, ...] = ()
    model_quality: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    mode: Mode = "legacy"
    alpha: float | None = None  # tested: the alpha the columns' corrected p-values are compared with
    correction: str | None = None
    classifier: DomainClassifierResult | None = None
    untestable_columns: int = 0
    # Arrival times of the window's oldest and newest rows (set by the monitor; for confirmation).
    window_first_arrival: float | None = None
    window_last_arrival: float | None = None

    def observation(self) -> Observation:
        """The raw verdicts the confirmed state is updated with."""
        columns = {c.column: c.detected for c in self.columns}
        if self.mode == "tested":  # untestable columns count as drifted, as in the verdict
            columns.update({s.column: True for s in self.skipped if s.code in UNTESTABLE_REASONS})
        return Observation(self.dataset_drift, columns, self.window_first_arrival, self.window_last_arrival)

    @property
    def drifted_ratio(self) -> float:
        return self.drifted_columns / self.tested_columns if self.tested_columns else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_columns_ratio"] = self.drifted_ratio
        safe: dict[str, Any] = _json_safe(out)
        return safe


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
    confirmation: ConfirmationState = field(default_factory=ConfirmationState)

    def as_dict(self) -> dict[str, Any]:
        confirmed = self.confirmation
        return {
            "dataset_drift_confirmed": confirmed.dataset.confirmed if confirmed.calculations else None,
            "columns_drift_confirmed": sorted(n for n, t in confirmed.columns.items() if t.confirmed),
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

    def record_success(self, result: CalculationResult, settings: ConfirmationSettings | None = None) -> None:
        """Publish a result and advance the model's confirmed drift state with it."""
        with self._lock:
            old = self._status[result.model]
            self._status[result.model] = replace(
                old,
                latest=result,
                confirmation=old.confirmation.update(
                    result.observation(), settings or ConfirmationSettings()
                ),
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
