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
from monitor_service.results import UNTESTABLE_REASONS, CalculationResult, ColumnDrift

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
        yield from _drift_families(stats)
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
        "Legacy mode: configured share of drifted columns that means dataset drift.",
        ["model"],
    )
    for s in stats:
        if s.drift_share is not None:  # tested mode has no share rule
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


def _drift_families(stats: Sequence[ModelStats]) -> Iterator[Metric]:
    """Drift results of each model's latest calculation and its confirmed drift state."""
    column = ["model", "column", "role"]
    signal = [*column, "signal"]
    dataset = _gauge(
        "dataset_drift",
        "1 when the last calculation's raw verdict is dataset drift. Tested mode: the domain classifier "
        "detects, or a feature column drifts after correction, or a feature column could not be tested; "
        "legacy mode: the share of drifted feature columns reaches drift.share.",
        ["model"],
    )
    confirmed = _gauge(
        "dataset_drift_confirmed",
        "1 while dataset drift is confirmed: the raw verdict held for drift.confirm calculations (and a "
        "full turnover of the window's rows) and has not been absent for drift.clear calculations since.",
        ["model"],
    )
    drifted = _gauge(
        "drifted_columns", "Feature columns that drifted (tested mode: or could not be tested).", ["model"]
    )
    ratio = _gauge(
        "drifted_columns_ratio",
        "Drifted feature columns divided by the feature columns (legacy: those tested).",
        ["model"],
    )
    score = _gauge(
        "column_drift_score",
        "Score of the column's stat test: tested mode, its raw p-value; legacy mode, a p-value (ks, "
        "chisquare, z) or a distance (wasserstein, jensenshannon, psi...).",
        [*column, "stattest"],
    )
    detected = _gauge(
        "column_drift_detected",
        "1 when the column drifted in the last calculation (tested mode: in its distribution or its "
        "missing share).",
        column,
    )
    column_confirmed = _gauge(
        "column_drift_confirmed",
        "1 while the column's drift is confirmed (see dataset_drift_confirmed).",
        column,
    )
    threshold = _gauge(
        "column_drift_threshold",
        "What the score is compared with: tested mode, the alpha of the corrected p-value; legacy mode, "
        "the stat test's threshold.",
        column,
    )
    p_value = _gauge(
        "column_drift_p_value",
        "Tested mode: raw p-value of the column's two-sample test; signal distribution (values) or "
        "missing (share of nulls).",
        signal,
    )
    corrected = _gauge(
        "column_drift_corrected_p_value",
        "Tested mode: p-value corrected across all the model's tests (drift.correction); drift needs it "
        'at or below drift_monitor_drift_alpha{family="columns"}.',
        signal,
    )
    effect = _gauge(
        "column_drift_effect_size",
        "Tested mode: size of the change; signal distribution: the measure named by `measure` "
        "(wasserstein in reference standard deviations, jensenshannon, psi); signal missing: the "
        "missing share of the window minus that of the reference.",
        [*signal, "measure"],
    )
    min_effect = _gauge(
        "column_drift_min_effect",
        "Tested mode: effect size (absolute, for the missing share) a change must reach to count as drift: "
        "the configured floor raised by the noise allowance of the sample sizes.",
        signal,
    )
    untestable = _gauge(
        "column_untestable",
        "Tested mode: 1 for a column that could not be tested (it counts as drifted); reason "
        "no_reference_values, no_current_values or test_failed.",
        [*column, "reason"],
    )
    untestable_count = _gauge(
        "untestable_columns", "Tested mode: feature columns that could not be tested.", ["model"]
    )
    alpha = _gauge(
        "drift_alpha",
        "Tested mode: the share of drift.alpha given to the columns' corrected p-values (family "
        "columns) and to the domain classifier's p-value (family classifier).",
        ["model", "family"],
    )
    auc = _gauge(
        "domain_classifier_auc",
        "Held-out ROC AUC of a classifier telling window rows from reference rows (0.5: "
        "indistinguishable, 1: fully separable).",
        ["model"],
    )
    auc_p = _gauge(
        "domain_classifier_p_value",
        "P-value of the domain classifier's AUC (Mann-Whitney, one-sided).",
        ["model"],
    )
    auc_detected = _gauge(
        "domain_classifier_detected",
        "1 when the domain classifier's p-value is at or below its alpha and its AUC reaches "
        "drift.classifier.min_auc.",
        ["model"],
    )
    min_auc = _gauge(
        "domain_classifier_min_auc", "AUC the domain classifier must reach to detect.", ["model"]
    )
    importance = _gauge(
        "domain_classifier_column_importance",
        "AUC the domain classifier loses when this feature is shuffled: how much the column explains "
        "the difference between window and reference.",
        ["model", "column"],
    )
    for model in stats:
        r = model.status.latest
        if r is None:
            continue
        state = model.confirmation
        if r.dataset_drift is not None:
            dataset.add_metric([r.model], float(r.dataset_drift))
            drifted.add_metric([r.model], r.drifted_columns)
            ratio.add_metric([r.model], r.drifted_ratio)
            confirmed.add_metric([r.model], float(state.dataset.confirmed))
        for c in r.columns:
            labels = [r.model, c.column, c.role]
            score.add_metric([*labels, c.stattest], c.score)
            detected.add_metric(labels, float(c.detected))
            threshold.add_metric(labels, c.threshold)
            _add_tested(c, labels, p_value, corrected, effect, min_effect)
        for name, track in state.columns.items():
            role = next((c.role for c in r.columns if c.column == name), None)
            role = role or next((s.role for s in r.skipped if s.column == name), None)
            if role is not None:
                column_confirmed.add_metric([r.model, name, role], float(track.confirmed))
        if r.mode == "tested":
            untestable_count.add_metric([r.model], r.untestable_columns)
            for s in r.skipped:
                if s.code in UNTESTABLE_REASONS:
                    untestable.add_metric([r.model, s.column, s.role, s.code], 1.0)
            if r.alpha is not None:
                alpha.add_metric([r.model, "columns"], r.alpha)
        if r.classifier is not None:
            k = r.classifier
            alpha.add_metric([r.model, "classifier"], k.alpha)
            auc.add_metric([r.model], k.auc)
            auc_p.add_metric([r.model], k.p_value)
            auc_detected.add_metric([r.model], float(k.detected))
            min_auc.add_metric([r.model], k.min_auc)
            for i in k.importances:
                importance.add_metric([r.model, i.column], i.importance)
    yield from (dataset, confirmed, drifted, ratio, score, detected, column_confirmed, threshold)
    yield from (p_value, corrected, effect, min_effect, untestable, untestable_count, alpha)
    yield from (auc, auc_p, auc_detected, min_auc, importance)


def _add_tested(
    c: ColumnDrift,
    labels: list[str],
    p_value: GaugeMetricFamily,
    corrected: GaugeMetricFamily,
    effect: GaugeMetricFamily,
    min_effect: GaugeMetricFamily,
) -> None:
    if c.p_value is not None and c.corrected_p_value is not None:
        p_value.add_metric([*labels, "distribution"], c.p_value)
        corrected.add_metric([*labels, "distribution"], c.corrected_p_value)
    if c.effect is not None and c.effect_size is not None and c.min_effect is not None:
        effect.add_metric([*labels, "distribution", c.effect], c.effect_size)
        min_effect.add_metric([*labels, "distribution"], c.min_effect)
    if c.missing is not None:
        m = c.missing
        p_value.add_metric([*labels, "missing"], m.p_value)
        corrected.add_metric([*labels, "missing"], m.corrected_p_value)
        effect.add_metric([*labels, "missing", "missing_share_change"], m.change)
        min_effect.add_metric([*labels, "missing"], m.min_change)


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
