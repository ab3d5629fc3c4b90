"""Prometheus collector: turns the latest published results into metric families on each scrape.

It never computes anything: it reads the frozen `ModelStats` of each model (through a callable,
so it needs nothing else of the service), so a scrape is cheap and consistent. Label values are
model and column names from the configuration only.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor_service import __version__
from monitor_service.model_quality.exposition import model_quality_families
from monitor_service.model_state import ModelStats
from monitor_service.results import CalculationResult

P = "drift_monitor_"


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=labels, unit=unit)


def _counter(name: str, doc: str) -> CounterMetricFamily:
    """A per-model counter (exported with the `_total` suffix)."""
    return CounterMetricFamily(P + name, doc, labels=["model"])


class DriftCollector(Collector):
    """Drift, data-quality and calculation-status metrics of every configured model."""

    def __init__(self, stats: Callable[[], Sequence[ModelStats]], evidently_version: str) -> None:
        self.stats = stats
        self.evidently_version = evidently_version

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        yield from _service_families(stats, self.evidently_version)
        yield from _config_families(stats)
        yield from _value_families(stats)
        results = [s.status.latest for s in stats if s.status.latest is not None]
        yield from _drift_families(results)
        yield from _quality_families(results)
        yield from _test_families(results)


def _service_families(stats: Sequence[ModelStats], evidently_version: str) -> Iterator[Metric]:
    info = _gauge(
        "build_info",
        "Build information of the drift monitor; always 1.",
        ["version", "evidently_version", "python_version"],
    )
    info.add_metric([__version__, evidently_version, platform.python_version()], 1)
    yield info
    window = _gauge("window_rows", "Rows now held in the model's sliding window.", ["model"])
    capacity = _gauge("window_max_rows", "Configured maximum rows of the model's window.", ["model"])
    interval = _gauge(
        "schedule_interval_seconds", "Configured time between scheduled calculations.", ["model"]
    )
    last_ingest = _gauge("last_ingest_timestamp_seconds", "Unix time of the last accepted row.", ["model"])
    calcs = _counter("calculations", "Calculations attempted.")
    errors = _counter("calculation_errors", "Calculations that failed; the traceback is in the log.")
    success = _gauge(
        "last_success_timestamp_seconds", "Unix time of the last successful calculation.", ["model"]
    )
    pending = _gauge("labels_pending", "Labels waiting for their row to arrive.", ["model"])
    expired = _counter("labels_expired", "Labels dropped unmatched: their row never arrived in time.")
    received = _counter("labels_received", "Ground-truth labels accepted by the labels endpoint.")
    matched = _counter(
        "labels_matched", "Labels joined to a row of the window, on arrival or when their row arrived later."
    )
    log_bytes = _gauge("log_segment_bytes", "Size of the model's current durable log segment.", ["model"])
    replayed = _counter("log_replayed_records", "Log records replayed at the last start.")
    corrupt = _counter(
        "log_corrupt_records",
        "Torn or corrupt log records (or an unreadable checkpoint) skipped at the last start.",
    )
    invalid = _counter(
        "log_invalid_records",
        "Intact log records skipped at the last start because they no longer fit the configured columns.",
    )
    for s in stats:
        name = [s.name]
        if s.durable:
            log_bytes.add_metric(name, s.journal_bytes)
            replayed.add_metric(name, s.replayed_records)
            corrupt.add_metric(name, s.corrupt_records)
            invalid.add_metric(name, s.invalid_records)
        pending.add_metric(name, s.labels_pending)
        expired.add_metric(name, s.labels_expired)
        received.add_metric(name, s.labels_received)
        matched.add_metric(name, s.labels_matched)
        window.add_metric(name, s.window_rows)
        capacity.add_metric(name, s.window_max_rows)
        interval.add_metric(name, s.schedule_every)
        if s.last_arrival is not None:
            last_ingest.add_metric(name, s.last_arrival)
        calcs.add_metric(name, s.status.calculations)
        errors.add_metric(name, s.status.errors)
        if s.status.latest is not None:
            success.add_metric(name, s.status.latest.finished_at)
    yield from (window, capacity, interval, last_ingest, calcs, errors, success, pending, expired)
    yield from (received, matched, log_bytes, replayed, corrupt, invalid)


def _config_families(stats: Sequence[ModelStats]) -> Iterator[Metric]:
    """Settings read from each model's current config, so a reload shows at once."""
    share = _gauge(
        "dataset_drift_share_threshold",
        "Configured share of drifted columns that means dataset drift.",
        ["model"],
    )
    for s in stats:
        share.add_metric([s.name], s.drift_share)
    yield share


def _value_families(stats: Sequence[ModelStats]) -> Iterator[Metric]:
    """What the contracts met and how late the event times are (labels from the config only)."""
    violations = CounterMetricFamily(
        P + "contract_violations",
        "Values that broke their column's contract (range, allowed values, contracts.max_abs), by "
        "the action taken: reject (the batch was refused), nullify (stored as null), keep.",
        labels=["model", "column", "action"],
    )
    missing = CounterMetricFamily(
        P + "missing_codes",
        "Values equal to one of the column's declared missing-value codes, stored as null.",
        labels=["model", "column"],
    )
    lag = HistogramMetricFamily(
        P + "event_lag_seconds",
        "Arrival time minus event time (columns.timestamp) of each accepted row; 0 when the row "
        "has no event time or one slightly in the future.",
        labels=["model"],
    )
    for s in stats:
        for (column, action), count in sorted(s.contract_violations.items()):
            violations.add_metric([s.name, column, action], count)
        for column, count in sorted(s.missing_codes.items()):
            missing.add_metric([s.name, column], count)
        if s.event_lag is not None:
            buckets, total = s.event_lag
            lag.add_metric([s.name], buckets, total)
    yield from (violations, missing, lag)


def _drift_families(results: list[CalculationResult]) -> Iterator[Metric]:
    dataset = _gauge(
        "dataset_drift", "1 when the share of drifted feature columns reaches the drift share.", ["model"]
    )
    drifted = _gauge("drifted_columns", "Feature columns whose drift was detected.", ["model"])
    ratio = _gauge(
        "drifted_columns_ratio", "Drifted feature columns divided by feature columns tested.", ["model"]
    )
    score = _gauge(
        "column_drift_score",
        "Drift score of the column: a p-value (ks, chisquare, z) or a "
        "distance (wasserstein, jensenshannon, psi...).",
        ["model", "column", "role", "stattest"],
    )
    detected = _gauge(
        "column_drift_detected", "1 when drift was detected for the column.", ["model", "column", "role"]
    )
    threshold = _gauge(
        "column_drift_threshold",
        "Threshold the column's drift score is compared with.",
        ["model", "column", "role"],
    )
    for r in results:
        if r.dataset_drift is not None:
            dataset.add_metric([r.model], float(r.dataset_drift))
            drifted.add_metric([r.model], r.drifted_columns)
            ratio.add_metric([r.model], r.drifted_ratio)
        for c in r.columns:
            score.add_metric([r.model, c.column, c.role, c.stattest], c.score)
            detected.add_metric([r.model, c.column, c.role], float(c.detected))
            threshold.add_metric([r.model, c.column, c.role], c.threshold)
    yield from (dataset, drifted, ratio, score, detected, threshold)


def _quality_families(results: list[CalculationResult]) -> Iterator[Metric]:
    missing = _gauge(
        "column_missing_values_ratio", "Share of null values of the column.", ["model", "column", "dataset"]
    )
    out_of_range = _gauge(
        "column_out_of_range_ratio",
        "Share of current values outside the reference's [min, max].",
        ["model", "column"],
    )
    new_category = _gauge(
        "column_new_category_ratio",
        "Share of current values whose category is absent from the reference.",
        ["model", "column"],
    )
    rows = _gauge(
        "dataset_rows",
        "Rows in the current window and the reference at the last calculation.",
        ["model", "dataset"],
    )
    labelled = _gauge("labelled_rows", "Rows of the window with a label at the last calculation.", ["model"])
    for r in results:
        rows.add_metric([r.model, "current"], r.current_rows)
        rows.add_metric([r.model, "reference"], r.reference_rows)
        for q in r.quality:
            missing.add_metric([r.model, q.column, "current"], q.missing_current)
            missing.add_metric([r.model, q.column, "reference"], q.missing_reference)
            if q.out_of_range is not None:
                out_of_range.add_metric([r.model, q.column], q.out_of_range)
            if q.new_category is not None:
                new_category.add_metric([r.model, q.column], q.new_category)
        if r.model_quality_detail is not None or r.labelled_rows:
            labelled.add_metric([r.model], r.labelled_rows)
    yield from (missing, out_of_range, new_category, rows, labelled)
    yield from model_quality_families(results)


def _test_families(results: list[CalculationResult]) -> Iterator[Metric]:
    passed = _gauge(
        "test_passed",
        "1 when the test passed in the last calculation, 0 when it failed (absent when not testable).",
        ["model", "test", "critical"],
    )
    value = _gauge(
        "test_value",
        "What the test compared: rows, offending rows, a share of rows, or distinct values.",
        ["model", "test"],
    )
    for r in results:
        for t in r.tests:
            if t.status == "skip" or t.value is None:
                continue
            passed.add_metric([r.model, t.name, "true" if t.critical else "false"], float(t.status == "pass"))
            value.add_metric([r.model, t.name], t.value)
    yield from (passed, value)
