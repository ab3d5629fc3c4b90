"""Prometheus collector: turns the latest published results into metric families on each scrape.

It never computes anything: it reads immutable results and window sizes, so a scrape is cheap and
consistent. Label values are model and column names from the configuration only.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor_service import __version__
from monitor_service.monitor import Monitor
from monitor_service.results import CalculationResult

P = "drift_monitor_"


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=labels, unit=unit)


class DriftCollector(Collector):
    """Drift, data-quality and calculation-status metrics of every configured model."""

    def __init__(self, monitor: Monitor, evidently_version: str) -> None:
        self.monitor = monitor
        self.evidently_version = evidently_version

    def collect(self) -> Iterator[Metric]:
        yield from self._service_families()
        yield from self._result_families()

    def _service_families(self) -> Iterator[Metric]:
        info = _gauge(
            "build_info",
            "Build information of the drift monitor; always 1.",
            ["version", "evidently_version", "python_version"],
        )
        info.add_metric([__version__, self.evidently_version, platform.python_version()], 1)
        yield info
        window = _gauge("window_rows", "Rows now held in the model's sliding window.", ["model"])
        capacity = _gauge("window_max_rows", "Configured maximum rows of the model's window.", ["model"])
        interval = _gauge(
            "schedule_interval_seconds", "Configured time between scheduled calculations.", ["model"]
        )
        last_ingest = _gauge(
            "last_ingest_timestamp_seconds", "Unix time of the last accepted row.", ["model"]
        )
        calcs = CounterMetricFamily(P + "calculations", "Calculations attempted.", labels=["model"])
        errors = CounterMetricFamily(
            P + "calculation_errors",
            "Calculations that failed; the traceback is in the log.",
            labels=["model"],
        )
        success = _gauge(
            "last_success_timestamp_seconds", "Unix time of the last successful calculation.", ["model"]
        )
        pending = _gauge("labels_pending", "Labels waiting for their row to arrive.", ["model"])
        expired = CounterMetricFamily(
            P + "labels_expired",
            "Labels dropped unmatched: their row never arrived in time.",
            labels=["model"],
        )
        log_bytes = _gauge("log_segment_bytes", "Size of the model's current durable log segment.", ["model"])
        replayed = CounterMetricFamily(
            P + "log_replayed_records", "Log records replayed at the last start.", labels=["model"]
        )
        corrupt = CounterMetricFamily(
            P + "log_corrupt_records",
            "Torn, corrupt or no longer valid log records skipped at the last start.",
            labels=["model"],
        )
        for name, runtime in self.monitor.runtimes.items():
            if runtime.log is not None:
                log_bytes.add_metric([name], runtime.log.size)
                replayed.add_metric([name], runtime.replay.records)
                corrupt.add_metric([name], runtime.replay.corrupt)
            status = self.monitor.store.get(name)
            runtime.pending_labels.expire(time.time())
            pending.add_metric([name], len(runtime.pending_labels))
            expired.add_metric([name], runtime.pending_labels.expired)
            window.add_metric([name], len(runtime.window))
            capacity.add_metric([name], runtime.window.max_rows)
            interval.add_metric([name], runtime.config.schedule.every)
            if runtime.window.last_arrival is not None:
                last_ingest.add_metric([name], runtime.window.last_arrival)
            calcs.add_metric([name], status.calculations)
            errors.add_metric([name], status.errors)
            if status.latest is not None:
                success.add_metric([name], status.latest.finished_at)
        yield from (window, capacity, interval, last_ingest, calcs, errors, success, pending, expired)
        yield from (log_bytes, replayed, corrupt)

    def _result_families(self) -> Iterator[Metric]:
        results = [s.latest for _, s in self.monitor.store.items() if s.latest is not None]
        yield from _drift_families(results)
        yield from _quality_families(results)
        yield from _test_families(results)


def _drift_families(results: list[CalculationResult]) -> Iterator[Metric]:
    dataset = _gauge(
        "dataset_drift", "1 when the share of drifted feature columns reaches the drift share.", ["model"]
    )
    drifted = _gauge("drifted_columns", "Feature columns whose drift was detected.", ["model"])
    ratio = _gauge(
        "drifted_columns_ratio", "Drifted feature columns divided by feature columns tested.", ["model"]
    )
    share = _gauge(
        "dataset_drift_share_threshold",
        "Configured share of drifted columns that means dataset drift.",
        ["model"],
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
        share.add_metric([r.model], r.drift_share)
        for c in r.columns:
            score.add_metric([r.model, c.column, c.role, c.stattest], c.score)
            detected.add_metric([r.model, c.column, c.role], float(c.detected))
            threshold.add_metric([r.model, c.column, c.role], c.threshold)
    yield from (dataset, drifted, ratio, share, score, detected, threshold)


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
    quality = _gauge(
        "model_quality", "Model quality on the labelled rows of the window.", ["model", "metric"]
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
        for metric, value in r.model_quality.items():
            quality.add_metric([r.model, metric], value)
        if r.model_quality or r.labelled_rows:
            labelled.add_metric([r.model], r.labelled_rows)
    yield from (missing, out_of_range, new_category, rows, quality, labelled)


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
