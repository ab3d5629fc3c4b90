"""The service's own operational metrics (counters and histograms), on the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# From 0.5 ms (a small batch) to 10 s (a huge one on a loaded machine).
INGEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CALCULATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
REJECT_REASONS = (
    "validation",
    "too_many_rows",
    "body_too_large",
    "bad_request",
    "unsupported_media_type",
    "storage_unavailable",
    "rate_limited",
)


class ServiceMetrics:
    """Ingest and calculation instruments; every configured model's series exist from the start."""

    def __init__(self, registry: CollectorRegistry, models: list[str]) -> None:
        self.rows_ingested = Counter(
            "drift_monitor_rows_ingested",
            "Rows accepted into the window (answered 202).",
            ["model"],
            registry=registry,
        )
        self.rows_rejected = Counter(
            "drift_monitor_rows_rejected",
            "Rows refused, by reason; none of them entered the window.",
            ["model", "reason"],
            registry=registry,
        )
        self.requests_rejected = Counter(
            "drift_monitor_requests_rejected",
            "Ingest requests refused, by reason (model is empty for unknown models).",
            ["model", "reason"],
            registry=registry,
        )
        self.ingest_duration = Histogram(
            "drift_monitor_ingest_request_duration_seconds",
            "Time to read, parse, validate and append one ingest request.",
            ["model"],
            buckets=INGEST_BUCKETS,
            registry=registry,
        )
        self.calculation_duration = Histogram(
            "drift_monitor_calculation_duration_seconds",
            "Wall time of one drift and quality calculation, window snapshot included.",
            ["model"],
            buckets=CALCULATION_BUCKETS,
            registry=registry,
        )
        for model in models:
            self.rows_ingested.labels(model)
            self.ingest_duration.labels(model)
            self.calculation_duration.labels(model)
            for reason in REJECT_REASONS:
                self.rows_rejected.labels(model, reason)
                self.requests_rejected.labels(model, reason)
        self.requests_rejected.labels("", "unknown_model")
