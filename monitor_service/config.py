"""Configuration: pydantic models, YAML loading with line numbers, environment overrides."""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor_service import yamlsource
from monitor_service.config_checks import cross_checks
from monitor_service.confirmation import ConfirmationSettings
from monitor_service.errors import ConfigError

MetricName = Literal["data_drift", "target_drift", "prediction_drift", "data_quality", "model_quality"]
ALL_METRICS: tuple[MetricName, ...] = (
    "data_drift",
    "target_drift",
    "prediction_drift",
    "data_quality",
    "model_quality",
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
ENV_PREFIX = "DRIFT_MONITOR_"


def parse_duration(value: Any) -> float:
    """Seconds from `30s`, `5m`, `1h`, `250ms`, `2d` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def parse_instant(value: Any) -> float:
    """Unix seconds from an ISO 8601 datetime (UTC when it has no zone), a YAML date or a number."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO 8601 datetime such as 2000-01-01T00:00:00Z, or Unix seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 datetime such as 2000-01-01T00:00:00Z, got {value!r}"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise ValueError("expected an ISO 8601 datetime such as 2000-01-01T00:00:00Z, or Unix seconds")


Instant = Annotated[float, BeforeValidator(parse_instant)]


MIN_TOKEN_LENGTH = 16
TOKEN_NAMES = ("ingest_token", "admin_token", "metrics_token", "read_token")


def _token(value: Any) -> Any:
    """A bearer token: a non-blank string without surrounding whitespace."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a token must be a non-empty string (leave the key out for no token)")
    if value != value.strip():
        raise ValueError("a token must not start or end with whitespace")
    return value


Token = Annotated[str, BeforeValidator(_token)]


def _label_text(value: Any) -> Any:
    """A class label written as YAML `true`, `1` or `1.0` is the class the data spells that way."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return value


LabelText = Annotated[str, BeforeValidator(_label_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnsConfig(_Strict):
    """Which input field plays which role."""

    id: str | None = None
    timestamp: str | None = None
    target: str | None = None
    prediction: str | list[str] | None = Field(
        default=None, description="a label/value column, or a list of per-class probability columns"
    )
    probability: str | None = Field(
        default=None, description="binary classification: probability of `positive_label` (for ROC AUC)"
    )
    positive_label: LabelText = Field(
        default="1",
        description="binary classification: the positive class; booleans match in any usual spelling "
        "(true, TRUE, True, 1)",
    )
    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @property
    def prediction_columns(self) -> list[str]:
        """Every column that carries model output: the prediction (or probabilities) and `probability`."""
        if self.prediction is None:
            columns = []
        else:
            columns = [self.prediction] if isinstance(self.prediction, str) else list(self.prediction)
        return [*columns, self.probability] if self.probability else columns

    @property
    def features(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    def all_names(self) -> list[str]:
        utility = [c for c in (self.id, self.timestamp, self.target) if c is not None]
        return [*utility, *self.prediction_columns, *self.features]

    @model_validator(mode="after")
    def _distinct(self) -> ColumnsConfig:
        names = self.all_names()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"a column may play one role only; repeated: {duplicates}")
        if not self.features:
            raise ValueError("declare at least one numerical or categorical feature column")
        return self


class WindowConfig(_Strict):
    max_rows: int = Field(default=10_000, gt=0, le=50_000_000)
    max_age: Duration | None = None
    age_by: Literal["arrival", "event_time"] = Field(
        default="arrival",
        description="what max_age measures: the time a row arrived, or its event time (columns.timestamp)",
    )


class LabelsConfig(_Strict):
    """Labels that arrive before their rows wait this long (and at most this many) to be joined."""

    pending_ttl: Duration = 3600.0
    pending_max: int = Field(default=100_000, ge=0)


class ScheduleConfig(_Strict):
    every: Duration = 60.0
    min_rows: int = Field(default=100, ge=1)


EffectMeasure = Literal["wasserstein", "jensenshannon", "psi"]
# The largest value each effect measure can take (Jensen-Shannon with the natural logarithm).
EFFECT_UPPER: dict[str, float] = {
    "wasserstein": math.inf,
    "jensenshannon": math.sqrt(math.log(2)),
    "psi": math.inf,
}


class ColumnDriftConfig(_Strict):
    """One column's drift settings. `stattest`/`threshold` are the legacy mode's; `test`, `effect`
    and `min_effect` the tested mode's."""

    stattest: str | None = Field(default=None, description="legacy mode: Evidently stat test")
    threshold: float | None = Field(default=None, ge=0, description="legacy mode: its threshold")
    test: str | None = Field(
        default=None, description="tested mode: a two-sample test returning a p-value (Evidently name)"
    )
    effect: EffectMeasure | None = Field(default=None, description="tested mode: effect size measure")
    min_effect: float | None = Field(
        default=None, gt=0, description="tested mode: effect size at or above which a column can drift"
    )

    @model_validator(mode="after")
    def _effect_in_range(self) -> ColumnDriftConfig:
        if self.effect is not None and self.min_effect is not None:
            _check_min_effect(self.effect, self.min_effect)
        return self


def _check_min_effect(measure: str, value: float) -> None:
    upper = EFFECT_UPPER[measure]
    if value >= upper:
        raise ValueError(f"min_effect {value} for {measure} can never be reached: it is at most {upper:.4f}")


class EffectConfig(_Strict):
    """Which effect size each column type is measured with."""

    numerical: EffectMeasure = "wasserstein"
    categorical: Literal["jensenshannon", "psi"] = "jensenshannon"
    clip_to_reference: bool = Field(
        default=True,
        description="clip the window's numbers to the reference's [min, max] before measuring the effect, "
        "so one extreme row cannot dominate it",
    )


class MinEffectConfig(_Strict):
    """The effect floor per measure: a column drifts only when its effect size reaches it."""

    wasserstein: float = Field(default=0.1, gt=0, description="in reference standard deviations")
    jensenshannon: float = Field(default=0.05, gt=0, lt=math.sqrt(math.log(2)))
    psi: float = Field(default=0.1, gt=0)

    def of(self, measure: str) -> float:
        value: float = getattr(self, measure)
        return value


class ClassifierConfig(_Strict):
    """The multivariate domain classifier: reference rows vs window rows."""

    enabled: bool = True
    max_rows: int = Field(
        default=5000, ge=100, le=1_000_000, description="rows sampled from each side (reference, window)"
    )
    alpha_share: float = Field(
        default=0.5, gt=0, lt=1, description="share of drift.alpha spent on the classifier's p-value"
    )
    min_auc: float = Field(
        default=0.62,
        gt=0.5,
        lt=1,
        description="held-out AUC at or above which the classifier can detect (0.62: the AUC of a 0.44 sd "
        "shift of one normal column)",
    )
    top_columns: int = Field(default=3, ge=1, le=50, description="columns listed as its explanation")


class DriftConfig(_Strict):
    mode: Literal["tested", "legacy"] = Field(
        default="tested",
        description="tested: two-sample tests corrected across columns, effect floors, a domain "
        "classifier; legacy: Evidently's defaults and the share-of-drifted-columns rule",
    )
    # legacy mode
    share: float = Field(default=0.5, gt=0, le=1)
    stattest: str | None = None
    threshold: float | None = Field(default=None, ge=0)
    # tested mode
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="chance of any false alarm per model and calculation"
    )
    correction: Literal["holm", "bh"] = Field(
        default="holm", description="holm: family-wise error; bh: Benjamini-Hochberg false discovery rate"
    )
    effect: EffectConfig = EffectConfig()
    min_effect: MinEffectConfig = MinEffectConfig()
    missing: bool = Field(default=True, description="test each column's missing share as a signal of its own")
    min_missing_change: float = Field(
        default=0.05, gt=0, lt=1, description="change of the missing share (0..1) that can count as drift"
    )
    classifier: ClassifierConfig = ClassifierConfig()
    calibration: Literal["none", "reference_chunks"] = Field(
        default="none",
        description="reference_chunks: raise each column's effect floor to the spread of reference "
        "chunks in file order (for references whose rows come in a natural order)",
    )
    # both modes: the confirmed state
    confirm: int = Field(default=3, ge=1, le=1000, description="calculations a drift must hold to confirm")
    clear: int = Field(default=3, ge=1, le=1000, description="calculations without it to clear it")
    turnover: bool = Field(
        default=True,
        description="also require every row of the window to be replaced between the first and the "
        "confirming calculation (only with confirm/clear above 1)",
    )
    per_column: dict[str, ColumnDriftConfig] = Field(default_factory=dict)

    @property
    def confirmation(self) -> ConfirmationSettings:
        return ConfirmationSettings(self.confirm, self.clear, self.turnover)

    def legacy_keys_set(self) -> list[str]:
        """Legacy-only keys given in the file (ignored, with a warning, in tested mode)."""
        keys = [f"drift.{k}" for k in ("share", "stattest", "threshold") if k in self.model_fields_set]
        for column, own in self.per_column.items():
            given = [k for k in ("stattest", "threshold") if k in own.model_fields_set]
            keys += [f"drift.per_column.{column}.{k}" for k in given]
        return keys


OnViolation = Literal["reject", "nullify", "keep"]
# A value of a YAML list: categories may be written as strings, numbers or booleans.
Scalar = str | bool | int | float
DEFAULT_MAX_ABS = 1e100


class ColumnContract(_Strict):
    """What one column may hold. Numbers: `min`/`max`; categories: `allowed`; both: `missing` codes."""

    min: float | None = None
    max: float | None = None
    allowed: list[Scalar] | None = Field(default=None, min_length=1)
    missing: list[Scalar] = Field(default_factory=list, description="values that mean null, e.g. 999999, N/A")
    on_violation: OnViolation | None = Field(default=None, description="null: contracts.on_violation")
    normalise: bool | None = Field(default=None, description="categories only; null: contracts.normalise")

    @model_validator(mode="after")
    def _ordered(self) -> ColumnContract:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class ContractsConfig(_Strict):
    """Per-column value contracts, and the defaults every numerical and categorical column follows."""

    on_violation: OnViolation = Field(
        default="reject",
        description="reject: refuse the batch (422); nullify: store the value as null; keep: store it",
    )
    max_abs: float | None = Field(
        default=DEFAULT_MAX_ABS,
        gt=0,
        description="numbers of a larger magnitude are violations (sentinels, overflows); null: no bound",
    )
    normalise: bool = Field(
        default=True, description="one spelling per category: booleans, integral numbers (README)"
    )
    columns: dict[str, ColumnContract] = Field(default_factory=dict)


class TimestampsConfig(_Strict):
    """How the event time column (`columns.timestamp`) is read and which times are plausible."""

    without_zone: Literal["utc", "reject"] = Field(
        default="utc", description="ISO datetimes without a zone: read as UTC, or refuse them"
    )
    earliest: Instant = Field(default=946_684_800.0, description="event times before this are refused")
    max_ahead: Duration = Field(
        default=86_400.0, description="event times later than arrival + this are refused"
    )


QualityMetricName = Literal[
    "mae",
    "rmse",
    "mape",
    "r2",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
]
REGRESSION_QUALITY: tuple[QualityMetricName, ...] = ("mae", "rmse", "mape", "r2")


class QualityConfig(_Strict):
    """Model quality: the evidence it needs, its intervals and baseline, and estimates without labels.

    Documented in docs/model-quality.md.
    """

    metrics: list[QualityMetricName] | None = Field(
        default=None, description="the quality metrics to compute; null: every metric of the task"
    )
    min_labelled_rows: int = Field(
        default=100, ge=1, description="below this many labelled rows a metric is `insufficient_labels`"
    )
    min_labelled_rows_target_drift: int = Field(
        default=500, ge=1, description="target drift is tested only on at least this many labelled rows"
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="level of every quality interval")
    resamples: int = Field(default=1000, ge=100, le=20_000, description="bootstrap and simulation draws")
    baseline: dict[QualityMetricName, float] = Field(
        default_factory=dict,
        description="the quality the alert compares with, per metric; wins over the reference's own",
    )
    classes: list[LabelText] | None = Field(
        default=None,
        min_length=2,
        description="classification: the classes (default: those of the reference's target and predictions)",
    )
    max_classes: int = Field(
        default=20, ge=2, le=200, description="per-class recall is exported for at most this many classes"
    )
    estimate: bool = Field(
        default=True,
        description="binary classification with a probability column: estimate quality without labels (CBPE)",
    )
    label_bias_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="significance of the label-arrival bias test"
    )
    label_bias_min_difference: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="label-arrival bias needs labelled shares per predicted class this far apart",
    )

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("classes must be distinct")
        return value


TestKind = Literal["row_count", "missing_share", "value_range", "new_category", "constant", "duplicates"]
AUTO_TEST_KINDS: tuple[TestKind, ...] = (
    "row_count",
    "missing_share",
    "value_range",
    "new_category",
    "constant",
    "duplicates",
)
_COLUMN_KINDS = {"missing_share", "value_range", "new_category", "constant"}
TEST_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class CustomTestConfig(_Strict):
    """A pass/fail condition written by the user; shares are fractions of the window's rows."""

    name: str = Field(pattern=TEST_NAME_PATTERN)
    kind: TestKind
    column: str | None = None
    critical: bool = False
    min: float | None = Field(default=None, description="row_count: fewest rows; value_range: lower bound")
    max: float | None = Field(default=None, description="row_count: most rows; value_range: upper bound")
    max_share: float | None = Field(
        default=None, ge=0, le=1, description="share of rows allowed to break the condition"
    )
    values: list[str] | None = Field(default=None, description="new_category: the allowed categories")

    @model_validator(mode="after")
    def _shape(self) -> CustomTestConfig:
        if (self.kind in _COLUMN_KINDS) != (self.column is not None):
            raise ValueError(
                f"kind {self.kind} " + ("needs a column" if self.kind in _COLUMN_KINDS else "takes no column")
            )
        if self.kind == "row_count" and self.min is None and self.max is None:
            raise ValueError("row_count needs min and/or max")
        if self.kind == "value_range" and (self.min is None or self.max is None):
            raise ValueError("value_range needs min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        if self.kind == "new_category" and not self.values:
            raise ValueError("new_category needs the list of allowed values")
        return self


class TestsConfig(_Strict):
    """Pass/fail tests run with every calculation (exported as drift_monitor_test_passed)."""

    __test__ = False  # not a pytest class

    auto: bool = Field(default=True, description="derive data-stability tests from the reference")
    false_failure_rate: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="chance that a window without drift fails any auto test (split over the tests)",
    )
    critical: list[TestKind] = Field(
        default_factory=list, description="kinds of auto tests whose failure is critical (alerts)"
    )
    exclude: list[str] = Field(
        default_factory=list, description="auto tests left out, by name (missing_share:carat) or kind"
    )
    custom: list[CustomTestConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> TestsConfig:
        names = [t.name for t in self.custom]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"custom test names must be unique; repeated: {repeated}")
        return self


class ModelConfig(_Strict):
    # Also a directory name under storage.data_dir: no separators, no leading dot, no "..".
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    task: Literal["regression", "classification"]
    reference: Path
    moving_reference: bool = Field(
        default=False,
        description="legacy mode only: after each calculation, the window it used becomes the next "
        "reference (ignored, with a warning, in tested mode: it hides step changes)",
    )
    columns: ColumnsConfig
    window: WindowConfig = WindowConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    labels: LabelsConfig = LabelsConfig()
    drift: DriftConfig = DriftConfig()
    metrics: list[MetricName] = Field(default_factory=lambda: list(ALL_METRICS))
    contracts: ContractsConfig = ContractsConfig()
    timestamps: TimestampsConfig = TimestampsConfig()

    @field_validator("name")
    @classmethod
    def _no_double_dot(cls, name: str) -> str:
        if ".." in name:
            raise ValueError("a model name may not contain '..'")
        return name

    quality: QualityConfig = QualityConfig()

    @field_validator("metrics")
    @classmethod
    def _quality_has_columns(cls, metrics: list[MetricName], info: ValidationInfo) -> list[MetricName]:
        """Listed explicitly, model_quality needs the label and one prediction column."""
        columns = info.data.get("columns")
        if "model_quality" not in metrics or not isinstance(columns, ColumnsConfig):
            return metrics
        if not columns.target:
            raise ValueError("model_quality needs columns.target, the column of the true label")
        if not isinstance(columns.prediction, str):
            raise ValueError(
                "model_quality needs columns.prediction: one column with the predicted value or label"
                + (" (a list of probability columns gives no label)" if columns.prediction else "")
            )
        return metrics

    @field_validator("quality")
    @classmethod
    def _quality_fits_task(cls, quality: QualityConfig, info: ValidationInfo) -> QualityConfig:
        task, columns = info.data.get("task"), info.data.get("columns")
        named = [*(quality.metrics or []), *quality.baseline]
        if task == "regression":
            wrong = sorted({m for m in named if m not in REGRESSION_QUALITY})
            if wrong:
                raise ValueError(
                    f"{wrong} are classification metrics; a regression model has {REGRESSION_QUALITY}"
                )
            if quality.classes is not None:
                raise ValueError("classes are for classification models")
        elif task == "classification":
            wrong = sorted({m for m in named if m in REGRESSION_QUALITY})
            if wrong:
                raise ValueError(f"{wrong} are regression metrics")
            if "roc_auc" in named and isinstance(columns, ColumnsConfig) and not columns.probability:
                raise ValueError("roc_auc needs columns.probability, the probability of positive_label")
        return quality

    tests: TestsConfig = TestsConfig()

    @property
    def moves_reference(self) -> bool:
        """Whether the window becomes the next reference: only in legacy mode."""
        return self.moving_reference and self.drift.mode == "legacy"

    @model_validator(mode="after")
    def _per_column_known(self) -> ModelConfig:
        unknown = sorted(set(self.drift.per_column) - set(self.columns.all_names()))
        if unknown:
            raise ValueError(f"drift.per_column names columns that are not declared: {unknown}")
        tested = {t.column for t in self.tests.custom if t.column is not None}
        unknown = sorted(tested - set(self.columns.features) - set(self.columns.prediction_columns))
        if unknown:
            raise ValueError(f"tests.custom names columns that are not features or predictions: {unknown}")
        if self.columns.probability and self.task != "classification":
            raise ValueError("columns.probability is for classification models")
        return self


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_rows_per_request: int = Field(default=10_000, gt=0)
    max_string_length: int = Field(default=1024, gt=0)
    executor: Literal["process", "thread"] = Field(
        default="process", description="where calculations run: a worker process (default) or a thread"
    )
    max_reference_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    max_rows_per_second: float | None = Field(
        default=None, gt=0, description="per model; more gets 429 with Retry-After (null: no limit)"
    )
    burst_seconds: float = Field(
        default=2.0, gt=0, description="the rate limit allows bursts of this many seconds"
    )
    max_reference_rows: int = Field(
        default=2_000_000, gt=0, description="largest reference accepted by PUT .../reference, in rows"
    )
    metrics_token: Token | None = Field(default=None, repr=False)
    protect_probes: bool = Field(
        default=False, description="require the metrics token on /healthz and /readyz too"
    )
    ingest_token: Token | None = Field(default=None, repr=False)
    admin_token: Token | None = Field(default=None, repr=False)
    read_token: Token | None = Field(
        default=None,
        repr=False,
        description="reads (model list, results, OpenAPI, docs); the admin token also works",
    )
    allowed_hosts: list[str] | None = Field(
        default=None,
        description="Host header values accepted (e.g. [localhost, 127.0.0.1]); others get 400. "
        "Null accepts any (see docs/security.md: DNS rebinding)",
    )
    # Limits applied before a request reaches the app (monitor_service/guard.py; docs/security.md).
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="request line and headers; more gets 431 and a close"
    )
    max_headers: int = Field(default=100, ge=8, description="headers per request; more gets 431 and a close")
    header_timeout: Duration = Field(
        default=10.0, description="a request's head must arrive within this; else 408 and a close"
    )
    body_timeout: Duration = Field(
        default=30.0, description="a request's body must arrive within this after its head; else 408"
    )
    max_connections: int = Field(
        default=256, ge=1, description="open connections at most; the next one gets 503 and a close"
    )
    keep_alive_timeout: Duration = Field(default=5.0, description="an idle keep-alive connection is closed")

    @model_validator(mode="after")
    def _probe_token(self) -> ServerConfig:
        return _probes_need_token(self)

    @property
    def read_tokens(self) -> list[str]:
        """Tokens that open reads; empty when reads are open (neither read nor admin token set)."""
        return [t for t in (self.read_token, self.admin_token) if t is not None]


def _probes_need_token(server: ServerConfig) -> ServerConfig:
    if server.protect_probes and server.metrics_token is None:
        raise ValueError("protect_probes needs a metrics_token (env DRIFT_MONITOR_METRICS_TOKEN)")
    return server


class StorageConfig(_Strict):
    """Durable log under the windows. Without `data_dir` the windows live in memory only."""

    data_dir: Path | None = None
    fsync: Literal["interval", "batch"] = Field(
        default="interval",
        description="interval: fsync every fsync_interval (a process crash loses nothing acknowledged; "
        "a power cut loses at most the interval); batch: fsync before every 202",
    )
    fsync_interval: Duration = 0.2
    compact_bytes: int = Field(default=64 * 1024 * 1024, gt=0)


class ClusterTLSConfig(_Strict):
    """TLS to the NATS servers. Any `tls://` server URL, or this section, turns TLS on."""

    ca_file: Path | None = Field(default=None, description="trust these CAs instead of the system's")
    cert_file: Path | None = Field(default=None, description="client certificate, for mutual TLS")
    key_file: Path | None = Field(default=None, description="the client certificate's private key")
    server_name: str | None = Field(
        default=None, description="name to check the servers' certificates against (URLs with IPs)"
    )

    @model_validator(mode="after")
    def _pair(self) -> ClusterTLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        return self


class ClusterRetentionConfig(_Strict):
    """Upper bounds of each model's stream. Windows are cut exactly on read (by rows and by age);
    these limits only keep the disk bounded when nobody reads."""

    max_age: Duration | None = Field(
        default=None,
        description="drop messages older than this; must cover every model's window.max_age + "
        "labels.pending_ttl, and also bounds the windows of models without a max_age",
    )
    max_bytes_per_model: int | None = Field(
        default=None, gt=0, description="cap of one model's stream on disk (per replica); oldest dropped"
    )


class ClusterConfig(_Strict):
    """Cluster mode: rows, labels, calculation tasks and results live in a NATS JetStream cluster."""

    # A validation error's text would otherwise quote the input, password included.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    servers: list[str] = Field(min_length=1, description="nats:// or tls:// URLs, without credentials")
    name: str | None = Field(default=None, description="connection name in NATS monitoring (host:pid)")
    stream_prefix: str = Field(default="DM", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
    replicas: Literal[1, 3, 5] = Field(
        default=3, description="copies of every stream; an even count survives no more failures"
    )
    user: str | None = None
    password: SecretStr | None = Field(default=None, repr=False)
    password_file: Path | None = None
    nkeys_seed_file: Path | None = None
    creds_file: Path | None = None
    tls: ClusterTLSConfig | None = None
    connect_timeout: Duration = 5.0
    publish_timeout: Duration = Field(
        default=10.0, description="how long a publish may wait for its replicated ack (then 503)"
    )
    duplicate_window: Duration = Field(
        default=120.0, description="a batch retried with the same id within this time is stored once"
    )
    task_ack_wait: Duration = Field(
        default=60.0, description="a calculation task not acknowledged in this time is redelivered"
    )
    task_max_deliver: int = Field(default=5, ge=1, le=1000)
    retention: ClusterRetentionConfig = ClusterRetentionConfig()

    @field_validator("servers")
    @classmethod
    def _server_urls(cls, servers: list[str]) -> list[str]:
        problems = [problem for url in servers if (problem := _server_url_problem(url))]
        if problems:
            raise ValueError("; ".join(problems))
        if len(set(servers)) != len(servers):
            raise ValueError("a server is listed twice")
        return servers

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> ClusterConfig:
        if (self.password is not None) and (self.password_file is not None):
            raise ValueError("give password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if (self.user is None) != (not has_password):
            raise ValueError("user and password (or password_file) go together")
        ways = [self.user is not None, self.nkeys_seed_file is not None, self.creds_file is not None]
        if sum(ways) > 1:
            raise ValueError("log in one way: user and password, nkeys_seed_file, or creds_file")
        if self.duplicate_window < self.publish_timeout:
            raise ValueError(
                "duplicate_window must be at least publish_timeout: a batch retried after a timed-out "
                "publish would otherwise be stored twice"
            )
        return self

    def files(self) -> dict[str, Path]:
        """Every file this section names, by its key (for path resolution and existence checks)."""
        found = {
            key: path
            for key in ("password_file", "nkeys_seed_file", "creds_file")
            if (path := getattr(self, key)) is not None
        }
        if self.tls is not None:
            for key in ("ca_file", "cert_file", "key_file"):
                if (path := getattr(self.tls, key)) is not None:
                    found[f"tls.{key}"] = path
        return found

    def stream_max_age(self, model: ModelConfig) -> float | None:
        """Age bound of the model's stream: its window age plus the label look-back plus a margin for
        batches in flight and clock skew (a minute, or publish_timeout if longer), or
        retention.max_age when that is set."""
        if self.retention.max_age is not None:
            return self.retention.max_age
        if model.window.max_age is None:
            return None
        return model.window.max_age + model.labels.pending_ttl + max(60.0, self.publish_timeout)

    def window_max_age(self, model: ModelConfig) -> float | None:
        """The age a cluster window is cut at on read: the model's own, else retention.max_age."""
        return model.window.max_age if model.window.max_age is not None else self.retention.max_age


def _server_url_problem(url: str) -> str | None:
    if "@" in url:  # checked first: the messages below quote the URL
        return "put credentials in user and password (or a file), not in a server URL: URLs get logged"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL: {exc}"
    if parts.scheme not in ("nats", "tls"):
        return f"{url!r}: use nats://host:port or tls://host:port"
    if not parts.hostname:
        return f"{url!r} names no host"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"{url!r}: a NATS server URL is scheme://host:port, nothing more"
    if port == 0:
        return f"{url!r}: port 0"
    return None


class ReportsConfig(_Strict):
    """Evidently snapshots kept per calculation under `storage.data_dir/<model>/reports/`."""

    enabled: bool = True
    every: StrictInt | Duration = Field(
        default=300.0,
        description="an integer: every N-th calculation; a duration (5m): at most once per period",
    )
    keep: int | None = Field(default=1000, ge=1, description="most reports kept per model")
    max_age: Duration | None = Field(default=30 * 86400.0, description="reports older than this go")
    max_bytes: int | None = Field(default=1024**3, gt=0, description="most bytes kept per model")

    @model_validator(mode="after")
    def _positive(self) -> ReportsConfig:
        if isinstance(self.every, int) and self.every < 1:
            raise ValueError("every: a number of calculations must be at least 1")
        return self


class EvidentlyUIExport(_Strict):
    """Push every stored snapshot into an Evidently workspace: a directory or a remote UI."""

    workspace: Path | None = Field(default=None, description="a local workspace that `evidently ui` serves")
    url: str | None = Field(default=None, pattern=r"^https?://", description="a remote Evidently UI")
    secret: str | None = Field(default=None, repr=False, description="env DRIFT_MONITOR_EVIDENTLY_SECRET")
    project_prefix: str = Field(default="", max_length=64, description="project name = prefix + model")

    @model_validator(mode="after")
    def _one_target(self) -> EvidentlyUIExport:
        if (self.workspace is None) == (self.url is None):
            raise ValueError("set exactly one of workspace (a directory) or url (a remote Evidently UI)")
        return self


class MlflowExport(_Strict):
    """Log each stored calculation to an MLflow experiment per model (needs the `mlflow` extra)."""

    tracking_uri: str = Field(min_length=1, description="http(s)://host:port of the MLflow server")
    experiment_prefix: str = Field(default="drift-monitor/", max_length=200)
    run_per: Literal["calculation", "day"] = "calculation"
    log_report: bool = Field(default=True, description="attach the HTML report as an artifact")


class ExportersConfig(_Strict):
    evidently_ui: EvidentlyUIExport | None = None
    mlflow: MlflowExport | None = None
    queue_size: int = Field(default=16, ge=1, le=1024, description="pushes waiting; more are dropped")


class MonitorConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)  # cluster.password

    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    reports: ReportsConfig = ReportsConfig()
    exporters: ExportersConfig = ExportersConfig()
    models: list[ModelConfig] = Field(min_length=1)
    cluster: ClusterConfig | None = Field(
        default=None, description="cluster mode on NATS JetStream (docs/cluster.md); absent: one node"
    )
    # The YAML document the config was parsed from, for `where()`; None when built in code.
    _yaml_root: yaml.Node | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_names(self) -> MonitorConfig:
        names = [m.name for m in self.models]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"model names must be unique; repeated: {repeated}")
        return self

    @model_validator(mode="after")
    def _cluster_keeps_windows(self) -> MonitorConfig:
        max_age = self.cluster.retention.max_age if self.cluster else None
        if max_age is None:
            return self
        short = [
            f"{m.name} ({m.window.max_age + m.labels.pending_ttl:g} s)"
            for m in self.models
            if m.window.max_age is not None and max_age < m.window.max_age + m.labels.pending_ttl
        ]
        if short:
            raise ValueError(
                f"cluster.retention.max_age ({max_age:g} s) is shorter than window.max_age + "
                f"labels.pending_ttl of {', '.join(short)}: the stream would drop rows the window holds"
            )
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)

    def where(self, loc: tuple[str | int, ...]) -> str:
        """`models[0].columns.target (line 12)`: a config path, with its line when the file is known."""
        line = yamlsource.line_of(self._yaml_root, loc) if self._yaml_root is not None else None
        return f"{yamlsource.format_loc(loc)} (line {line})" if line else yamlsource.format_loc(loc)


_ENV_OVERRIDES: dict[str, str] = {
    "HOST": "host",
    "PORT": "port",
    "INGEST_TOKEN": "ingest_token",
    "ADMIN_TOKEN": "admin_token",
    "METRICS_TOKEN": "metrics_token",
    "READ_TOKEN": "read_token",
}
_ENV_STORAGE_OVERRIDES: dict[str, str] = {"DATA_DIR": "data_dir"}


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    server = dict(raw.get("server") or {})
    for env_name, key in _ENV_OVERRIDES.items():
        value = environ.get(ENV_PREFIX + env_name)
        if value or (value is not None and key in TOKEN_NAMES):  # an empty token is refused, not ignored
            server[key] = value
    storage = dict(raw.get("storage") or {})
    for env_name, key in _ENV_STORAGE_OVERRIDES.items():
        value = environ.get(ENV_PREFIX + env_name)
        if value:
            storage[key] = value
    if storage:
        raw = {**raw, "storage": storage}
    secret = environ.get(ENV_PREFIX + "EVIDENTLY_SECRET")
    exporters = raw.get("exporters")
    if secret and isinstance(exporters, dict) and isinstance(exporters.get("evidently_ui"), dict):
        raw = {
            **raw,
            "exporters": {**exporters, "evidently_ui": {**exporters["evidently_ui"], "secret": secret}},
        }
    token_file = environ.get(ENV_PREFIX + "TOKEN_FILE")
    if token_file:
        server.update(_read_token_file(Path(token_file)))
    if isinstance(raw.get("cluster"), dict):
        raw = {**raw, "cluster": _apply_cluster_env(raw["cluster"], environ)}
    return {**raw, "server": server}


def _apply_cluster_env(cluster: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """NATS servers and credentials from the environment, into an existing `cluster:` section only
    (the environment never switches cluster mode on by itself)."""
    cluster = dict(cluster)
    if servers := environ.get(ENV_PREFIX + "NATS_SERVERS"):
        cluster["servers"] = [url.strip() for url in servers.split(",") if url.strip()]
    if user := environ.get(ENV_PREFIX + "NATS_USER"):
        cluster["user"] = user
    if password := environ.get(ENV_PREFIX + "NATS_PASSWORD"):
        cluster["password"] = password
        cluster.pop("password_file", None)
    return cluster


def _read_token_file(path: Path) -> dict[str, Any]:
    """A YAML file with any of the tokens, kept out of the main config. A key given without a value
    is an error, never the string "None"."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), [f"cannot read the token file: {type(exc).__name__}"]) from exc
    if not isinstance(loaded, dict):
        raise ConfigError(str(path), [f"token file must be a mapping with any of {', '.join(TOKEN_NAMES)}"])
    problems = [
        f"{key}: given without a value" for key in TOKEN_NAMES if key in loaded and loaded[key] is None
    ]
    unknown = sorted(str(k) for k in loaded if k not in TOKEN_NAMES)
    problems += [f"{key}: not a token name (expected one of {', '.join(TOKEN_NAMES)})" for key in unknown]
    if problems:
        raise ConfigError(str(path), problems)
    return {k: v if isinstance(v, str) else str(v) for k, v in loaded.items()}


def parse_config(
    text: str, source: str, base_dir: Path, environ: dict[str, str] | None = None
) -> MonitorConfig:
    """Validate YAML text; relative reference paths resolve against `base_dir`.

    Every problem is reported at once with its path and line: duplicate keys, invalid values, and
    settings that cannot work together (`config_checks`).
    """
    try:
        raw, root, problems = yamlsource.load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(source, [*problems, "the file must hold a mapping with a `models` list"])
    raw = _apply_env(raw, dict(os.environ) if environ is None else environ)
    try:
        config = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            line = yamlsource.line_of(root, loc)
            where = yamlsource.format_loc(loc)
            problems.append(f"{where} (line {line}): {err['msg']}" if line else f"{where}: {err['msg']}")
        raise ConfigError(source, problems) from exc
    problems.extend(cross_checks(config, root))
    if problems:
        raise ConfigError(source, problems)
    models = [m.model_copy(update={"reference": (base_dir / m.reference).resolve()}) for m in config.models]
    storage = config.storage
    if storage.data_dir is not None:  # like the references: relative to the config file
        storage = storage.model_copy(update={"data_dir": (base_dir / storage.data_dir).resolve()})
    exporters = config.exporters
    ui = exporters.evidently_ui
    if ui is not None and ui.workspace is not None:  # like data_dir: relative to the config file
        ui = ui.model_copy(update={"workspace": (base_dir / ui.workspace).resolve()})
        exporters = exporters.model_copy(update={"evidently_ui": ui})
    cluster = _resolve_cluster_files(config.cluster, base_dir, source) if config.cluster else None
    config = config.model_copy(
        update={"models": models, "storage": storage, "cluster": cluster, "exporters": exporters}
    )
    config._yaml_root = root
    return config


def _resolve_cluster_files(cluster: ClusterConfig, base_dir: Path, source: str) -> ClusterConfig:
    """The section's files resolved against the config file's directory; each must be readable."""
    resolved = {key: (base_dir / path).resolve() for key, path in cluster.files().items()}
    problems = [
        f"cluster.{key}: cannot read {path}" for key, path in resolved.items() if not os.access(path, os.R_OK)
    ]
    if problems:
        raise ConfigError(source, problems)
    top = {key: path for key, path in resolved.items() if not key.startswith("tls.")}
    if cluster.tls is not None:
        tls = {key[4:]: path for key, path in resolved.items() if key.startswith("tls.")}
        return cluster.model_copy(update={**top, "tls": cluster.tls.model_copy(update=tls)})
    return cluster.model_copy(update=top)


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> MonitorConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    return parse_config(text, str(path), path.parent, environ)


def config_warnings(config: MonitorConfig) -> list[str]:
    """What is allowed but probably not meant: said by `check-config` and logged at start."""
    warnings = []
    server = config.server
    for name in TOKEN_NAMES:
        token = getattr(server, name)
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            warnings.append(
                f"server.{name}: shorter than {MIN_TOKEN_LENGTH} characters; such tokens will be refused "
                "in the next release (use e.g. `openssl rand -hex 24`)"
            )
    if config.cluster is not None and config.storage.data_dir is not None:
        warnings.append(
            "storage.data_dir is not used in cluster mode: the cluster's streams are the durable log "
            "(docs/cluster.md)"
        )
    if config.cluster is not None and config.reports.enabled and "reports" not in config.model_fields_set:
        cap = config.reports.max_bytes
        if cap is not None:
            total = len(config.models) * cap * config.cluster.replicas
            warnings.append(
                f"reports: stored in the cluster's files bucket with the defaults, up to "
                f"{total / 1024**3:.0f} GiB across the NATS nodes ({len(config.models)} models x "
                f"{cap / 1024**3:.0f} GiB x {config.cluster.replicas} replicas); size them with "
                "reports.keep / reports.max_bytes (docs/cluster.md, Sizing)"
            )
    if server.ingest_token is not None and not server.read_tokens:
        warnings.append(
            "server: an ingest token is set but neither read_token nor admin_token: model list, results "
            "and the API description are readable without a token"
        )
    return warnings
