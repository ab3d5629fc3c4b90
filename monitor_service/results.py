"""Immutable calculation results and the per-model status the API and the collector read."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

log = logging.getLogger(__name__)
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
class QualityValue:
    """A quality metric with its interval (`confidence` level) and the rows it rests on."""

    metric: str
    value: float
    lower: float
    upper: float
    rows: int
    method: str  # wilson | bootstrap | simulation (estimates)


@dataclass(frozen=True)
class QualitySkip:
    """A metric asked for and not computed; `reason` is from model_quality.spec.REASONS."""

    metric: str
    reason: str


@dataclass(frozen=True)
class ClassRecall:
    """Recall of one class (of the configured or reference classes) with its Wilson interval."""

    label: str
    value: float
    lower: float
    upper: float
    rows: int


@dataclass(frozen=True)
class Baseline:
    metric: str
    value: float
    source: Literal["reference", "config"]


@dataclass(frozen=True)
class LabelledShare:
    """Rows of one group (predicted class, or prediction quintile for regression) and how many
    of them carry a label."""

    group: str
    rows: int
    labelled: int


@dataclass(frozen=True)
class LabelBias:
    """Whether labels arrive at different rates depending on the prediction (chi-square test of
    independence between 'labelled' and the group). When detected, target drift is not reported."""

    detected: bool
    pvalue: float
    difference: float  # highest minus lowest labelled share among the groups
    groups: tuple[LabelledShare, ...] = ()


@dataclass(frozen=True)
class ModelQualityResult:
    """Model quality of one calculation: realised (on labels), baseline, estimated (CBPE)."""

    kind: str  # regression | binary | multiclass
    labelled_rows: int
    min_labelled_rows: int
    confidence: float
    metrics: tuple[QualityValue, ...] = ()
    skipped: tuple[QualitySkip, ...] = ()
    class_recall: tuple[ClassRecall, ...] = ()
    class_recall_skipped: tuple[QualitySkip, ...] = ()  # metric = the class label
    baseline: tuple[Baseline, ...] = ()
    baseline_skipped: tuple[QualitySkip, ...] = ()
    estimated: tuple[QualityValue, ...] = ()
    estimated_skipped: tuple[QualitySkip, ...] = ()
    mape_zero_targets: int = 0

    def value(self, metric: str) -> QualityValue | None:
        return next((m for m in self.metrics if m.metric == metric), None)


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
    model_quality_detail: ModelQualityResult | None = None
    label_bias: LabelBias | None = None
    tests: tuple[TestOutcome, ...] = ()

    @property
    def failed_tests(self) -> list[TestOutcome]:
        return [t for t in self.tests if t.status == "fail"]

    @property
    def drifted_ratio(self) -> float:
        return self.drifted_columns / self.tested_columns if self.tested_columns else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_safe({**asdict(self), "drifted_columns_ratio": self.drifted_ratio})
        return out


def _json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON: report them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class ReportPage:
    """A self-contained HTML report page and the Content-Security-Policy it must be served with."""

    html: str
    content_security_policy: str


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

    def succeeded(self, result: CalculationResult) -> ModelStatus:
        """The status after a successful calculation."""
        return replace(
            self,
            latest=result,
            status="ok",
            last_attempt_at=result.finished_at,
            last_error=None,
            calculations=self.calculations + 1,
        )

    def failed(self, at: float, error: str) -> ModelStatus:
        """The status after a failed calculation; the last good result stays published."""
        return replace(
            self,
            status="failed",
            last_attempt_at=at,
            last_error=error,
            calculations=self.calculations + 1,
            errors=self.errors + 1,
        )
