"""Per-model runtime state: config, row schema, window, reference, labels, log; built from the config."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

import pandas as pd

from monitor_service.config import ModelConfig, MonitorConfig
from monitor_service.errors import ConfigError
from monitor_service.labels import PendingLabels
from monitor_service.ratelimit import RowRateLimiter
from monitor_service.reference import checked, load_reference
from monitor_service.schema import RowSchema
from monitor_service.storage import ModelLog, ReplayReport
from monitor_service.window import SlidingWindow

log = logging.getLogger(__name__)
_REFERENCE_VERSIONS = itertools.count(1)


@dataclass(frozen=True)
class RequestBody:
    """A request body as received and its format (bodies.py), for the durable log."""

    body: bytes
    body_format: int


@dataclass(frozen=True)
class LabelsOutcome:
    model: str
    accepted: int
    matched: int
    pending: int


@dataclass
class ModelRuntime:
    """One monitored model: its config, row schema, window and reference."""

    config: ModelConfig
    schema: RowSchema
    window: SlidingWindow
    reference: pd.DataFrame
    pending_labels: PendingLabels
    log: ModelLog | None = None
    limiter: RowRateLimiter | None = None
    # Unique in the process, so a worker's cached reference can never be mistaken for another's.
    reference_version: int = field(default_factory=lambda: next(_REFERENCE_VERSIONS))
    replay: ReplayReport = field(default_factory=ReplayReport)
    compaction: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def name(self) -> str:
        return self.config.name


def build_runtimes(config: MonitorConfig) -> dict[str, ModelRuntime]:
    """Load every reference; report every problem of every model at once."""
    runtimes: dict[str, ModelRuntime] = {}
    problems: list[str] = []
    for index, model in enumerate(config.models):
        schema = RowSchema.from_model(model, config.server.max_string_length)
        try:
            reference = load_reference(model, schema, f"models[{index}].reference")
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        kinds = {spec.name: spec.kind for spec in schema.columns}
        window = SlidingWindow(
            kinds,
            model.window.max_rows,
            model.window.max_age,
            id_column=model.columns.id,
            target_column=model.columns.target,
        )
        pending = PendingLabels(model.labels.pending_max, model.labels.pending_ttl)
        storage = config.storage
        model_log = None
        if storage.data_dir is not None:
            model_log = ModelLog(storage.data_dir / model.name, fsync_every_record=storage.fsync == "batch")
        if model_log is not None and (saved := model_log.saved_reference()) is not None:
            saved, saved_problems = checked(saved, schema)  # the columns may have changed since
            if saved_problems:
                log.warning(
                    "model %s: the reference replaced through the API no longer fits the "
                    "columns (%s); using %s",
                    model.name,
                    saved_problems[0][1],
                    model.reference,
                )
            else:
                log.info(
                    "model %s: using the reference replaced through the API (%d rows)", model.name, len(saved)
                )
                reference = saved
        limiter = None
        if (rate := config.server.max_rows_per_second) is not None:
            burst = max(rate * config.server.burst_seconds, config.server.max_rows_per_request)
            limiter = RowRateLimiter(rate, burst)
        runtimes[model.name] = ModelRuntime(model, schema, window, reference, pending, model_log, limiter)
    if problems:
        raise ConfigError("references", problems)
    return runtimes


def use_reference(runtime: ModelRuntime, frame: pd.DataFrame) -> None:
    runtime.reference = frame.reset_index(drop=True)
    runtime.reference_version = next(_REFERENCE_VERSIONS)  # the worker's cached copy is now stale
