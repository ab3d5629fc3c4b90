"""The monitor service: every model's state, the calculation worker, start, reload and stop. No HTTP.

With `cluster:` in the config the service is also a member of a cluster (cluster/member.py): every
model's journal is its stream in NATS JetStream, calculations are tasks any member may take, and
what readers see of a model comes from the cluster's shared entries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from monitor_service.config import ModelConfig, MonitorConfig
from monitor_service.drift_warnings import drift_warnings
from monitor_service.errors import ConfigError, ReloadNeedsRestart, UnknownModel
from monitor_service.exporters import ExportDispatcher, build_exporters
from monitor_service.journal import Journal, MemoryJournal
from monitor_service.journal.local import LocalJournal
from monitor_service.log_throttle import ThrottledLog
from monitor_service.model_quality.checks import check_model_quality
from monitor_service.model_state import ModelState, ModelStats
from monitor_service.ratelimit import RowRateLimiter
from monitor_service.reference import checked, load_reference
from monitor_service.reload import plan_reload
from monitor_service.reports import ReportStore
from monitor_service.results import CalculationResult
from monitor_service.schema import RowSchema
from monitor_service.worker import CalculationWorker

if TYPE_CHECKING:  # nats-py (the `cluster` extra) is imported only in cluster mode
    from monitor_service.cluster.member import ClusterMember
    from monitor_service.journal.jetstream_journal import JetStreamConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model's row schema and checked reference, as read from the config (no storage touched)."""

    config: ModelConfig
    index: int
    schema: RowSchema
    reference: pd.DataFrame


def load_models(config: MonitorConfig) -> dict[str, LoadedModel]:
    """Read and check every model's reference; report every problem of every model at once."""
    loaded: dict[str, LoadedModel] = {}
    problems: list[str] = []
    for index, model in enumerate(config.models):
        schema = RowSchema.from_model(model, config.server.max_string_length)
        try:
            reference = load_reference(model, schema, f"models[{index}].reference")
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        loaded[model.name] = LoadedModel(model, index, schema, reference)
    if problems:
        raise ConfigError("references", problems)
    return loaded


def _journal(
    config: MonitorConfig, model: ModelConfig, accept_data_loss: bool, connection: JetStreamConnection | None
) -> Journal:
    if connection is not None:  # cluster mode: the model's stream is its journal
        from monitor_service.journal.jetstream_journal import JetStreamJournal

        return JetStreamJournal(connection, model)
    storage = config.storage
    if storage.data_dir is None:
        return MemoryJournal()
    return LocalJournal(
        storage.data_dir / model.name,
        fsync_every_record=storage.fsync == "batch",
        compact_bytes=storage.compact_bytes,
        accept_data_loss=accept_data_loss,
    )


def _saved_or_configured(loaded: LoadedModel, journal: Journal) -> pd.DataFrame:
    """A reference replaced through the API wins over the file, while it still fits the columns."""
    saved = journal.saved_reference()
    if saved is None:
        return loaded.reference
    saved, problems = checked(saved, loaded.schema)
    if problems:
        log.warning(
            "model %s: the reference replaced through the API no longer fits the columns (%s); using %s",
            loaded.config.name,
            problems[0][1],
            loaded.config.reference,
        )
        return loaded.reference
    log.info(
        "model %s: using the reference replaced through the API (%d rows)", loaded.config.name, len(saved)
    )
    return saved


def _report_store(config: MonitorConfig, name: str, connection: JetStreamConnection | None) -> ReportStore:
    """On this node's disk (or in memory), or in cluster mode in the cluster's files bucket."""
    if connection is None:
        return ReportStore.for_model(name, config.storage.data_dir, config.reports)
    from monitor_service.cluster.reports import SharedReportBackend

    return ReportStore(name, SharedReportBackend(name, connection), config.reports)


def _limiter(config: MonitorConfig) -> RowRateLimiter | None:
    rate = config.server.max_rows_per_second
    if rate is None:
        return None
    return RowRateLimiter(rate, max(rate * config.server.burst_seconds, config.server.max_rows_per_request))


class MonitorService:
    """Owns the models and the worker; the API and the scheduler talk to this."""

    def __init__(
        self,
        config: MonitorConfig,
        models: dict[str, ModelState],
        worker: CalculationWorker,
        observe_calculation: Callable[[str, float], None] | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.worker = worker
        self.ready = False
        self.warnings: list[str] = []  # said once at start (model quality checks of the references)
        self.reports: dict[str, ReportStore] = {}
        self.exporters = ExportDispatcher([])
        self._observe = observe_calculation
        self.member: ClusterMember | None = None  # cluster mode (set by `build`)
        self._problems = ThrottledLog(log)

    @classmethod
    def build(
        cls,
        config: MonitorConfig,
        *,
        accept_data_loss: bool = False,
        observe_calculation: Callable[[str, float], None] | None = None,
    ) -> MonitorService:
        """Every model from the config (references loaded and checked); nothing started yet.
        `observe_calculation(model, seconds)` is told the wall time of every calculation."""
        connection = None
        if config.cluster is not None:  # nats-py is imported only in cluster mode
            from monitor_service.journal.jetstream_journal import JetStreamConnection

            connection = JetStreamConnection(config.cluster)
        models: dict[str, ModelState] = {}
        problems: list[str] = []
        warnings: list[str] = []
        for name, loaded in load_models(config).items():
            journal = _journal(config, loaded.config, accept_data_loss, connection)
            reference = _saved_or_configured(loaded, journal)
            quality = check_model_quality(config, loaded.index, reference)  # the reference in use
            problems.extend(quality.errors)
            warnings.extend(f"model {name}: {warning}" for warning in quality.warnings)
            warnings.extend(drift_warnings(loaded.config, reference, f"models[{loaded.index}]"))
            models[name] = ModelState(loaded.config, loaded.schema, reference, journal, _limiter(config))
        if problems:
            raise ConfigError("references", problems)
        service = cls(config, models, CalculationWorker(config.server.executor), observe_calculation)
        service.warnings = warnings
        service.reports = {name: _report_store(config, name, connection) for name in models}
        service.exporters = ExportDispatcher(
            build_exporters(config.exporters, config.models), config.exporters.queue_size
        )
        if connection is not None and config.cluster is not None:
            from monitor_service.cluster.member import ClusterMember

            service.member = ClusterMember(
                config.cluster, models, connection, service.calculate_here, service.reports
            )
        return service

    def model(self, name: str) -> ModelState:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(name) from None

    def stats(self) -> list[ModelStats]:
        """Every model's view; in cluster mode the cluster's, from the shared entries."""
        if self.member is not None:
            return self.member.stats()
        now = time.time()
        return [state.stats(now) for state in self.models.values()]

    def stats_of(self, name: str) -> ModelStats:
        state = self.model(name)
        if self.member is not None:
            return self.member.stats_of(name)
        return state.stats(time.time())

    async def start(self) -> None:
        """Recover every window from its journal (in cluster mode: join the cluster), start the
        worker and check the drift settings in it; ready after both."""
        if self.member is not None:
            await self.member.start(self.config.models)
        for state in self.models.values():
            state.recover()
        problems = await self.worker.check_settings(self.config.models)
        if problems:
            raise ConfigError("drift settings", problems)
        self.ready = True

    async def calculate(self, name: str, *, keep_report: bool = False) -> CalculationResult:
        """One calculation of a model now (scheduled or asked for); failures are logged, counted
        in the model's status and raised as CalculationFailed. Its Evidently report is stored when
        `reports.every` says it is due (or `keep_report`), then handed to the exporters. In cluster
        mode on the window as the stream holds it, published to every member, the report stored in
        the cluster's files bucket."""
        if self.member is not None:
            return await self.member.calculate_now(name, keep_report)
        return await self.calculate_here(name, keep_report)

    async def calculate_here(self, name: str, keep_report: bool = False) -> CalculationResult:
        """One calculation on this monitor's window of the model, timed; its report kept when due."""
        state = self.model(name)
        store = self.reports[name]
        number = state.status.calculations + 1  # in cluster mode the cluster's count (adopted)
        wanted = store.due(time.time(), number) or (keep_report and store.settings.enabled)
        started = time.perf_counter()
        try:
            calculated = await state.calculate(self.worker, snapshot=wanted)
        finally:
            if self._observe is not None:
                self._observe(name, time.perf_counter() - started)
        if calculated.snapshot is not None:
            await self._keep(store, calculated.result, calculated.snapshot, number)
        return calculated.result

    async def _keep(self, store: ReportStore, result: CalculationResult, snapshot: str, number: int) -> None:
        try:
            await asyncio.to_thread(store.put, result, snapshot, number)
        except OSError as exc:  # counted by the store; the result stands
            self._problems.log(logging.ERROR, "reports", "model %s: report not stored: %s", store.model, exc)
            return
        self.exporters.submit(store.model, result, snapshot)

    def report_store(self, name: str) -> ReportStore:
        """The stored reports of a model (UnknownModel for others)."""
        self.model(name)
        return self.reports[name]

    async def reload(self, new: MonitorConfig) -> list[str]:
        """Apply a changed config to the running models and return the names changed; raise
        ReloadNeedsRestart (nothing applied) or ConfigError (nothing applied)."""
        plan = plan_reload(self.config, new)
        if not plan.applicable:
            raise ReloadNeedsRestart("a restart is needed to change " + "; ".join(plan.restart_needed))
        problems = await self.worker.check_settings(new.models)
        references: dict[str, pd.DataFrame] = {}
        for index, model in enumerate(new.models):
            if model.name in plan.new_references:
                try:
                    references[model.name] = load_reference(
                        model, self.models[model.name].schema, f"models[{index}].reference"
                    )
                except ConfigError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise ConfigError("reloaded config", problems)
        for name, frame in references.items():  # every file written before anything is applied
            await self.models[name].persist_reference(frame)
        for model in new.models:
            if model.name in plan.changed_models:
                await self.models[model.name].apply_config(model, references.get(model.name))
        if self.member is not None:
            await self.member.reconfigure(new.models)
        self.config = new
        log.info("configuration reloaded; models changed: %s", ", ".join(plan.changed_models) or "none")
        return list(plan.changed_models)

    async def shutdown(self) -> None:
        """Graceful stop: checkpoint every window that needs it (a fast next start), push what the
        exporters still hold (bounded), then close."""
        for state in self.models.values():
            await state.close()
        if self.member is not None:
            await self.member.close()
        self.worker.close()
        await asyncio.to_thread(self.exporters.close, 10.0)

    def close(self) -> None:
        """Stop the worker and close the journals without checkpoints (a failed start)."""
        self.worker.close()
        self.exporters.close(0.0)
        for state in self.models.values():
            state.journal.close()
