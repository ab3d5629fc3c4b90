"""Immutable calculation results and the per-model status the API and the collector read."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from monitor_service.confirmation import Observation

log = logging.getLogger(__name__)
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
    drift_share: float | None
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

    mode: Mode = "legacy"
    alpha: float | None = None  # tested: the alpha the columns' corrected p-values are compared with
    correction: str | None = None
    classifier: DomainClassifierResult | None = None
    untestable_columns: int = 0
    # Arrival times of the window's oldest and newest rows (set by ModelState; for confirmation).
    window_first_arrival: float | None = None
    window_last_arrival: float | None = None

    def observation(self) -> Observation:
        """The raw verdicts the confirmed state is updated with."""
        columns = {c.column: c.detected for c in self.columns}
        if self.mode == "tested":  # untestable columns count as drifted, as in the verdict
            columns.update({s.column: True for s in self.skipped if s.code in UNTESTABLE_REASONS})
        return Observation(self.dataset_drift, columns, self.window_first_arrival, self.window_last_arrival)

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
