"""Configuration: pydantic models, YAML loading with line numbers, environment overrides."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from monitor_service import yamlsource
from monitor_service.config_checks import cross_checks
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
    positive_label: str = Field(default="1", description="binary classification: the positive class")
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


class ColumnDriftConfig(_Strict):
    stattest: str | None = None
    threshold: float | None = Field(default=None, ge=0)


class DriftConfig(_Strict):
    share: float = Field(default=0.5, gt=0, le=1)
    stattest: str | None = None
    threshold: float | None = Field(default=None, ge=0)
    per_column: dict[str, ColumnDriftConfig] = Field(default_factory=dict)


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


class ModelConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    task: Literal["regression", "classification"]
    reference: Path
    moving_reference: bool = Field(
        default=False, description="after each calculation, the window it used becomes the next reference"
    )
    columns: ColumnsConfig
    window: WindowConfig = WindowConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    labels: LabelsConfig = LabelsConfig()
    drift: DriftConfig = DriftConfig()
    metrics: list[MetricName] = Field(default_factory=lambda: list(ALL_METRICS))
    contracts: ContractsConfig = ContractsConfig()
    timestamps: TimestampsConfig = TimestampsConfig()

    @model_validator(mode="after")
    def _per_column_known(self) -> ModelConfig:
        unknown = sorted(set(self.drift.per_column) - set(self.columns.all_names()))
        if unknown:
            raise ValueError(f"drift.per_column names columns that are not declared: {unknown}")
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
    metrics_token: str | None = Field(default=None, repr=False)
    protect_probes: bool = Field(
        default=False, description="require the metrics token on /healthz and /readyz too"
    )
    ingest_token: str | None = Field(default=None, repr=False)
    admin_token: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _probe_token(self) -> ServerConfig:
        return _probes_need_token(self)


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


class MonitorConfig(_Strict):
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    models: list[ModelConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> MonitorConfig:
        names = [m.name for m in self.models]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"model names must be unique; repeated: {repeated}")
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)


_ENV_OVERRIDES: dict[str, str] = {
    "HOST": "host",
    "PORT": "port",
    "INGEST_TOKEN": "ingest_token",
    "ADMIN_TOKEN": "admin_token",
    "METRICS_TOKEN": "metrics_token",
}
_ENV_STORAGE_OVERRIDES: dict[str, str] = {"DATA_DIR": "data_dir"}


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    server = dict(raw.get("server") or {})
    for env_name, key in _ENV_OVERRIDES.items():
        value = environ.get(ENV_PREFIX + env_name)
        if value:
            server[key] = value
    storage = dict(raw.get("storage") or {})
    for env_name, key in _ENV_STORAGE_OVERRIDES.items():
        value = environ.get(ENV_PREFIX + env_name)
        if value:
            storage[key] = value
    if storage:
        raw = {**raw, "storage": storage}
    token_file = environ.get(ENV_PREFIX + "TOKEN_FILE")
    if token_file:
        server.update(_read_token_file(Path(token_file)))
    return {**raw, "server": server}


def _read_token_file(path: Path) -> dict[str, str]:
    """A YAML file with `ingest_token` and/or `admin_token`, kept out of the main config."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            str(path), ["token file must be a mapping with ingest_token, admin_token, metrics_token"]
        )
    return {k: str(v) for k, v in loaded.items() if k in ("ingest_token", "admin_token", "metrics_token")}


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
    return config.model_copy(update={"models": models, "storage": storage})


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> MonitorConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    return parse_config(text, str(path), path.parent, environ)
