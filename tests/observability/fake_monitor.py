"""A stand-in for the drift monitor's ``/metrics``: every metric of docs/metrics.md, made up values.

It lets the rules and dashboards be exercised by a real Prometheus without the real service (and its
Evidently start-up). Values are chosen so that every alert condition of the drift group holds
(confirmed dataset, feature, target and prediction drift, more missing values than the reference)
except the inhibit-only many-columns alert (two confirmed feature columns), and every counter and
histogram grows on each scrape, so rates are non-zero. Both drift modes' metrics are served. The
label sets follow docs/metrics.md exactly; tests/observability/test_prometheus_live.py lints the output with
``promtool check metrics``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

MODEL = "churn"  # a classification model with every metric
REGRESSION_MODEL = "price"  # a regression model, only for the regression quality metrics
ALPHA = 0.025
# column -> (role, stattest, p-value, corrected p-value, effect measure, effect size, floor, drifted and
# confirmed); the threshold of every column is ALPHA (tested mode)
COLUMNS: dict[str, tuple[str, str, float, float, str, float, float, int]] = {
    "age": ("feature", "ks_2samp", 0.0001, 0.0004, "wasserstein_clipped", 0.42, 0.1, 1),
    "plan": ("feature", "chi2_homogeneity", 0.4, 0.8, "jensenshannon", 0.01, 0.05, 0),
    "churned": ("target", "chi2_homogeneity", 0.001, 0.003, "jensenshannon", 0.11, 0.05, 1),
    "churn_probability": ("prediction", "ks_2samp", 0.00001, 0.00005, "wasserstein_clipped", 0.23, 0.1, 1),
}
UNTESTABLE = ("region", "feature", "no_current_values")  # a feature column that could not be tested
IMPORTANCE = {"age": 0.12, "plan": 0.0}
NUMERICAL = ("age", "churn_probability")
CATEGORICAL = ("plan", "churned")
QUALITY = {"accuracy": 0.81, "precision": 0.7, "recall": 0.65, "f1": 0.67, "roc_auc": 0.88}
REGRESSION_QUALITY = {"mae": 310.0, "rmse": 520.0, "mape": 12.0, "r2": 0.91}
# metric -> baseline: churn's accuracy interval [0.78, 0.84] is below its 0.9 (the quality alerts'
# condition holds, for churn only); every other interval holds its baseline.
BASELINES = {**QUALITY, "accuracy": 0.9}
REGRESSION_BASELINES = dict(REGRESSION_QUALITY)
CLASSES = ("no", "yes")
BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)


def _histogram(name: str, documentation: str, count: int, typical: float) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["model"])
    buckets = [(str(bound), float(count if bound >= typical else count // 2)) for bound in BUCKETS]
    buckets.append(("+Inf", float(count)))
    family.add_metric([MODEL], buckets, sum_value=count * typical)
    return family


class ContractCollector(Collector):
    """Yields fresh families on each collect(); counters grow with the number of scrapes."""

    def __init__(self) -> None:
        self.scrapes = 0
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        with self._lock:
            self.scrapes += 1
            n = self.scrapes
        now = time.time()
        yield from self._drift()
        yield from self._quality()
        yield from self._health(n, now)
        yield from self._tests_and_reports(n, now)

    def _drift(self) -> Iterator[Any]:
        m = [MODEL]
        yield _gauge("drift_monitor_dataset_drift", "Dataset drift (0/1)", ["model"], [(m, 1)])
        yield _gauge("drift_monitor_dataset_drift_confirmed", "Confirmed dataset drift", ["model"], [(m, 1)])
        yield _gauge("drift_monitor_drifted_columns", "Drifted feature columns", ["model"], [(m, 2)])
        yield _gauge(
            "drift_monitor_drifted_columns_ratio", "Drifted feature columns share", ["model"], [(m, 2 / 3)]
        )
        yield _gauge("drift_monitor_untestable_columns", "Untestable feature columns", ["model"], [(m, 1)])
        yield _gauge(
            "drift_monitor_dataset_drift_share_threshold", "Configured drift.share", ["model"], [(m, 0.5)]
        )
        yield from self._columns()
        yield _gauge(
            "drift_monitor_drift_alpha",
            "Alpha per family",
            ["model", "family"],
            [([MODEL, "columns"], ALPHA), ([MODEL, "classifier"], ALPHA)],
        )
        yield _gauge("drift_monitor_domain_classifier_auc", "Classifier AUC", ["model"], [(m, 0.74)])
        yield _gauge("drift_monitor_domain_classifier_p_value", "Classifier p-value", ["model"], [(m, 1e-6)])
        yield _gauge("drift_monitor_domain_classifier_detected", "Classifier detects", ["model"], [(m, 1)])
        yield _gauge("drift_monitor_domain_classifier_min_auc", "Classifier min AUC", ["model"], [(m, 0.55)])
        yield _gauge(
            "drift_monitor_domain_classifier_column_importance",
            "AUC lost when shuffled",
            ["model", "column"],
            [([MODEL, column], value) for column, value in IMPORTANCE.items()],
        )

    def _columns(self) -> Iterator[Any]:
        column_labels = ["model", "column", "role"]
        signal = [*column_labels, "signal"]
        scores, detected, confirmed, thresholds = [], [], [], []
        p_values, corrected, effects, floors = [], [], [], []
        for column, (role, stattest, p, cp, measure, effect, floor, drifted) in COLUMNS.items():
            labels = [MODEL, column, role]
            scores.append(([*labels, stattest], p))
            detected.append((labels, drifted))
            confirmed.append((labels, drifted))
            thresholds.append((labels, ALPHA))
            p_values.append(([*labels, "distribution"], p))
            corrected.append(([*labels, "distribution"], cp))
            effects.append(([*labels, "distribution", measure], effect))
            floors.append(([*labels, "distribution"], floor))
        age = [MODEL, "age", "feature", "missing"]
        p_values.append((age, 1e-9))
        corrected.append((age, 1e-8))
        effects.append(([*age, "missing_share_change"], 0.25))
        floors.append((age, 0.05))
        region = [MODEL, UNTESTABLE[0], UNTESTABLE[1]]
        confirmed.append((region, 1))
        yield _gauge(
            "drift_monitor_column_drift_score", "Stat test score", [*column_labels, "stattest"], scores
        )
        yield _gauge("drift_monitor_column_drift_detected", "Column drift (0/1)", column_labels, detected)
        yield _gauge(
            "drift_monitor_column_drift_confirmed", "Confirmed column drift", column_labels, confirmed
        )
        yield _gauge("drift_monitor_column_drift_threshold", "Column threshold", column_labels, thresholds)
        yield _gauge("drift_monitor_column_drift_p_value", "Raw p-value", signal, p_values)
        yield _gauge("drift_monitor_column_drift_corrected_p_value", "Corrected p-value", signal, corrected)
        yield _gauge("drift_monitor_column_drift_effect_size", "Effect size", [*signal, "measure"], effects)
        yield _gauge("drift_monitor_column_drift_min_effect", "Effect floor", signal, floors)
        yield _gauge(
            "drift_monitor_column_untestable",
            "Untestable column",
            [*column_labels, "reason"],
            [([MODEL, *UNTESTABLE], 1)],
        )
        yield from self._data_quality()

    def _data_quality(self) -> Iterator[Any]:
        missing = []
        for column in COLUMNS:
            missing.append(([MODEL, column, "current"], 0.25 if column == "age" else 0.0))
            missing.append(([MODEL, column, "reference"], 0.0))
        yield _gauge(
            "drift_monitor_column_missing_values_ratio",
            "Missing share",
            ["model", "column", "dataset"],
            missing,
        )
        yield _gauge(
            "drift_monitor_column_out_of_range_ratio",
            "Out-of-range share",
            ["model", "column"],
            [([MODEL, column], 0.02) for column in NUMERICAL],
        )
        yield _gauge(
            "drift_monitor_column_new_category_ratio",
            "New category share",
            ["model", "column"],
            [([MODEL, column], 0.03) for column in CATEGORICAL],
        )
        yield _gauge(
            "drift_monitor_dataset_rows",
            "Rows per dataset",
            ["model", "dataset"],
            [([MODEL, "current"], 5000), ([MODEL, "reference"], 10000)],
        )

    def _quality(self) -> Iterator[Any]:
        values = [(MODEL, QUALITY, BASELINES), (REGRESSION_MODEL, REGRESSION_QUALITY, REGRESSION_BASELINES)]
        labels = ["model", "metric"]
        for suffix, shift in (("", 0.0), ("_lower", -0.03), ("_upper", 0.03)):
            yield _gauge(
                f"drift_monitor_model_quality{suffix}",
                "Model quality",
                labels,
                [([m, k], v + shift * (v if v > 1 else 1)) for m, q, _ in values for k, v in q.items()],
            )
        yield _gauge(
            "drift_monitor_model_quality_rows",
            "Rows per metric",
            labels,
            [([m, k], 1200) for m, q, _ in values for k in q],
        )
        yield _gauge(
            "drift_monitor_model_quality_baseline",
            "Baseline",
            labels,
            [([m, k], v) for m, _, b in values for k, v in b.items()],
        )
        for name in ("skipped", "baseline_skipped", "estimated_skipped"):
            yield _gauge(
                f"drift_monitor_model_quality_{name}",
                "Skipped",
                ["model", "metric", "reason"],
                [([REGRESSION_MODEL, "mape", "zero_targets"], 1)],
            )
        for suffix, shift in (("", 0.0), ("_lower", -0.02), ("_upper", 0.02)):
            yield _gauge(
                f"drift_monitor_model_quality_estimated{suffix}",
                "Estimated quality",
                labels,
                [([MODEL, k], v + shift) for k, v in QUALITY.items()],
            )
        for suffix, shift in (("", 0.0), ("_lower", -0.05), ("_upper", 0.05)):
            yield _gauge(
                f"drift_monitor_model_class_recall{suffix}",
                "Recall per class",
                ["model", "class"],
                [([MODEL, c], 0.7 + shift) for c in CLASSES],
            )
        yield _gauge(
            "drift_monitor_model_class_recall_skipped",
            "Class recall skipped",
            ["model", "class", "reason"],
            [([MODEL, "maybe", "class_absent"], 1)],
        )
        yield _gauge(
            "drift_monitor_model_quality_mape_zero_targets",
            "Zero targets",
            ["model"],
            [([REGRESSION_MODEL], 3)],
        )
        yield _gauge("drift_monitor_label_arrival_bias", "Label bias", ["model"], [([MODEL], 0)])
        yield _gauge("drift_monitor_label_arrival_bias_pvalue", "Label bias p", ["model"], [([MODEL], 0.4)])
        yield _gauge(
            "drift_monitor_labelled_ratio",
            "Labelled share",
            ["model", "group"],
            [([MODEL, c], 0.5) for c in CLASSES],
        )
        yield _gauge(
            "drift_monitor_labelled_rows",
            "Labelled rows",
            ["model"],
            [([MODEL], 1200), ([REGRESSION_MODEL], 800)],
        )

    def _health(self, n: int, now: float) -> Iterator[Any]:
        m = [MODEL]
        yield _counter("drift_monitor_calculations", "Calculations attempted", ["model"], [(m, 2 * n)])
        yield _counter("drift_monitor_calculation_errors", "Calculations failed", ["model"], [(m, n // 2)])
        yield _histogram(
            "drift_monitor_calculation_duration_seconds", "Calculation wall time", count=2 * n, typical=1.0
        )
        yield _gauge(
            "drift_monitor_last_success_timestamp_seconds", "Last success", ["model"], [(m, now - 10)]
        )
        yield _gauge("drift_monitor_schedule_interval_seconds", "Schedule interval", ["model"], [(m, 60)])
        yield _counter("drift_monitor_rows_ingested", "Rows accepted", ["model"], [(m, 100 * n)])
        yield _counter(
            "drift_monitor_rows_rejected",
            "Rows refused",
            ["model", "reason"],
            [([MODEL, "validation"], n), ([MODEL, "too_many_rows"], 0)],
        )
        yield _counter(
            "drift_monitor_requests_rejected",
            "Requests refused",
            ["model", "reason"],
            [([MODEL, "validation"], n), (["", "unknown_model"], n)],
        )
        yield _histogram(
            "drift_monitor_ingest_request_duration_seconds", "Ingest request time", count=10 * n, typical=0.01
        )
        # 2 % of the rows break age's contract (the alert's condition holds); plan's are fine
        yield _counter(
            "drift_monitor_contract_violations",
            "Values that broke their column's contract",
            ["model", "column", "action"],
            [([MODEL, "age", "nullify"], 2 * n), ([MODEL, "plan", "reject"], 0)],
        )
        yield _counter(
            "drift_monitor_missing_codes", "Missing-value codes", ["model", "column"], [([MODEL, "age"], n)]
        )
        yield _histogram("drift_monitor_event_lag_seconds", "Event lag", count=100 * n, typical=5.0)
        yield _gauge("drift_monitor_window_rows", "Rows in the window", ["model"], [(m, 5000)])
        yield _gauge("drift_monitor_window_max_rows", "Window capacity", ["model"], [(m, 10000)])
        yield _gauge(
            "drift_monitor_last_ingest_timestamp_seconds", "Last accepted row", ["model"], [(m, now - 1)]
        )
        yield _gauge("drift_monitor_worker_up", "Worker alive", [], [([], 1)])
        yield _gauge("drift_monitor_worker_resident_memory_bytes", "Worker RSS", [], [([], 330e6)])
        yield _gauge("drift_monitor_worker_peak_resident_memory_bytes", "Worker peak RSS", [], [([], 520e6)])
        yield _gauge("drift_monitor_server_peak_resident_memory_bytes", "Server peak RSS", [], [([], 280e6)])
        yield _gauge(
            "drift_monitor_build_info",
            "Build information",
            ["version", "evidently_version", "python_version"],
            [(["0.1.0", "0.7.23", "3.11.7"], 1)],
        )

    def _tests_and_reports(self, n: int, now: float) -> Iterator[Any]:
        """A failing critical test (DriftMonitorCriticalTestFailed's condition), a passing one, a
        stored report and an exporter that works."""
        tests = [("missing_share:age", "true", 0.0, 42.0), ("row_count", "false", 1.0, 5000.0)]
        yield _gauge(
            "drift_monitor_test_passed",
            "Test outcome (0/1)",
            ["model", "test", "critical"],
            [([MODEL, test, critical], passed) for test, critical, passed, _ in tests],
        )
        yield _gauge(
            "drift_monitor_test_value",
            "What the test compared",
            ["model", "test"],
            [([MODEL, test], value) for test, _, _, value in tests],
        )
        newest = [([MODEL], now - 30)]
        yield _gauge("drift_monitor_last_report_timestamp_seconds", "Newest stored report", ["model"], newest)
        yield _gauge("drift_monitor_reports_stored", "Reports kept", ["model"], [([MODEL], 12)])
        yield _gauge("drift_monitor_reports_stored_bytes", "Bytes kept", ["model"], [([MODEL], 9_600_000)])
        yield _counter("drift_monitor_report_write_errors", "Reports not stored", ["model"], [([MODEL], 0)])
        ui = ["evidently_ui"]
        yield _counter("drift_monitor_exports", "Pushes", ["exporter"], [(ui, n)])
        yield _counter("drift_monitor_export_failures", "Failed pushes", ["exporter"], [(ui, 0)])
        yield _counter("drift_monitor_exports_dropped", "Dropped pushes", ["exporter"], [(ui, 0)])
        yield _gauge(
            "drift_monitor_export_last_success_timestamp_seconds",
            "Last push",
            ["exporter"],
            [(ui, now - 30)],
        )


def _gauge(
    name: str, documentation: str, labels: list[str], samples: list[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _counter(
    name: str, documentation: str, labels: list[str], samples: list[tuple[list[str], float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


class FakeMonitor:
    """Serves the contract metrics plus this process's process_* metrics on 127.0.0.1:<port>/metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.collector = ContractCollector()
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        registry = self.registry

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_response(404)
                    self.end_headers()
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-monitor", daemon=True)

    @property
    def target(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def metrics_text(self) -> str:
        return generate_latest(self.registry).decode()

    def __enter__(self) -> FakeMonitor:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
