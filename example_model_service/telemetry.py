"""The model service's own Prometheus metrics, on a registry created per app (nothing global).

Label values are fixed: `model` is `regression`, `classification`, `price_band` or `unknown` (a path
naming no model), `status` an HTTP status code, `reason` one of the error reasons below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "model_service"
ERROR_REASONS = ("bad_request", "validation", "too_large", "unknown_model", "not_ready", "internal")
_SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# MonitorClient.stats() fields that count items by what became of them.
_ITEM_OUTCOMES = (
    "enqueued",
    "sent",
    "rejected",
    "dropped_queue_full",
    "dropped_after_retries",
    "dropped_closed",
)


class ServiceMetrics:
    """Request, error, size and prediction metrics of the prediction endpoint."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Prediction requests answered, by model and HTTP status code.",
            ["model", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from receiving a prediction request to having its answer, including validation.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Prediction requests that failed, by model and reason (bad_request: not JSON; validation: "
            "a row does not fit the schema; too_large; unknown_model; not_ready; internal).",
            ["model", "reason"],
            registry=registry,
        )
        self.request_bytes = Histogram(
            f"{PREFIX}_request_body_bytes",
            "Size of prediction request bodies.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.response_bytes = Histogram(
            f"{PREFIX}_response_body_bytes",
            "Size of prediction response bodies.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            f"{PREFIX}_predictions",
            "Rows scored (a request with many rows counts each).",
            ["model"],
            registry=registry,
        )

    def observe(
        self,
        model: str,
        status: int,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
        reason: str | None = None,
    ) -> None:
        self.requests.labels(model, str(status)).inc()
        self.latency.labels(model).observe(seconds)
        self.request_bytes.labels(model).observe(request_bytes)
        self.response_bytes.labels(model).observe(response_bytes)
        if reason is not None:
            self.errors.labels(model, reason).inc()


class MonitorClientCollector(Collector):
    """Exports the MonitorClient's counters, read from `stats()` on each scrape."""

    def __init__(self, stats: Callable[[], Any | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        enabled = GaugeMetricFamily(
            f"{PREFIX}_monitor_reporting_enabled",
            "1 when predictions are reported to the drift monitor (MONITOR_URL set), else 0.",
            value=0 if stats is None else 1,
        )
        yield enabled
        if stats is None:
            return
        items = CounterMetricFamily(
            f"{PREFIX}_monitor_items",
            "Rows and labels handed to the monitor client, by outcome: enqueued, then sent, rejected "
            "(4xx from the monitor) or dropped (queue full, retries exhausted, client closed).",
            labels=["outcome"],
        )
        for outcome in _ITEM_OUTCOMES:
            value = getattr(stats, outcome, None)
            if value is not None:
                items.add_metric([outcome], float(value))
        yield items
        for field, name, help_text in (
            ("retried", "monitor_retries", "HTTP requests to the monitor that were retries."),
            ("batches_sent", "monitor_batches_sent", "Batches the monitor accepted (2xx)."),
        ):
            value = getattr(stats, field, None)
            if value is not None:
                yield CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=float(value))
        pending = getattr(stats, "pending", None)
        if pending is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_monitor_pending_items",
                "Items enqueued for the monitor and not yet sent, rejected or dropped.",
                value=float(pending),
            )
