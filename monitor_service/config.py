"""Configuration: pydantic models, YAML loading with line numbers, environment overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)

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
    tests: TestsConfig = TestsConfig()

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
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    reports: ReportsConfig = ReportsConfig()
    exporters: ExportersConfig = ExportersConfig()
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
    return {**raw, "server": server}


def _read_token_file(path: Path) -> dict[str, str]:
    """A YAML file with `ingest_token` and/or `admin_token`, kept out of the main config."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            str(path), ["token file must be a mapping with ingest_token, admin_token, metrics_token"]
        )
    return {k: str(v) for k, v in loaded.items() if k in ("ingest_token", "admin_token", "metrics_token")}


def _format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def parse_config(
    text: str, source: str, base_dir: Path, environ: dict[str, str] | None = None
) -> MonitorConfig:
    """Validate YAML text; relative reference paths resolve against `base_dir`."""
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the file must hold a mapping with a `models` list"])
    raw = _apply_env(raw, dict(os.environ) if environ is None else environ)
    try:
        config = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            line = _line_of(root, loc)
            where = f"{_format_loc(loc)} (line {line})" if line else _format_loc(loc)
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError(source, problems) from exc
    models = [m.model_copy(update={"reference": (base_dir / m.reference).resolve()}) for m in config.models]
    storage = config.storage
    if storage.data_dir is not None:  # like the references: relative to the config file
        storage = storage.model_copy(update={"data_dir": (base_dir / storage.data_dir).resolve()})
    exporters = config.exporters
    ui = exporters.evidently_ui
    if ui is not None and ui.workspace is not None:  # like data_dir: relative to the config file
        ui = ui.model_copy(update={"workspace": (base_dir / ui.workspace).resolve()})
        exporters = exporters.model_copy(update={"evidently_ui": ui})
    return config.model_copy(update={"models": models, "storage": storage, "exporters": exporters})


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> MonitorConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    return parse_config(text, str(path), path.parent, environ)
