"""Prometheus families of stored reports and exporters (registered beside DriftCollector)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor_service.exporters import ExportDispatcher
from monitor_service.reports import ReportStore

P = "drift_monitor_"


class ReportsCollector(Collector):
    """The newest stored report per model (alerts link to it), what is kept, and export health."""

    def __init__(self, stores: Mapping[str, ReportStore], dispatcher: ExportDispatcher | None = None) -> None:
        self.stores = stores
        self.dispatcher = dispatcher

    def collect(self) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            P + "last_report_timestamp_seconds",
            "Calculation time of the newest stored report; GET /v1/models/{model}/report?at=<this> shows it.",
            labels=["model"],
        )
        kept = GaugeMetricFamily(P + "reports_stored", "Reports kept for the model.", labels=["model"])
        size = GaugeMetricFamily(
            P + "reports_stored_bytes", "Bytes of the reports kept for the model.", labels=["model"]
        )
        errors = CounterMetricFamily(
            P + "report_write_errors",
            "Reports that could not be stored (the log says why).",
            labels=["model"],
        )
        for name, store in self.stores.items():
            newest = store.latest()
            if newest is not None:
                last.add_metric([name], newest.time)
            kept.add_metric([name], len(store))
            size.add_metric([name], store.total_bytes)
            errors.add_metric([name], store.write_errors)
        yield from (last, kept, size, errors)
        if self.dispatcher is not None:
            yield from _export_families(self.dispatcher)


def _export_families(dispatcher: ExportDispatcher) -> Iterator[Metric]:
    pushed = CounterMetricFamily(
        P + "exports", "Stored calculations pushed to the exporter.", labels=["exporter"]
    )
    failed = CounterMetricFamily(
        P + "export_failures", "Pushes that failed (logged once per change of error).", labels=["exporter"]
    )
    dropped = CounterMetricFamily(
        P + "exports_dropped",
        "Stored calculations not exported: the exporters were behind.",
        labels=["exporter"],
    )
    last = GaugeMetricFamily(
        P + "export_last_success_timestamp_seconds",
        "Unix time of the last successful push.",
        labels=["exporter"],
    )
    for name, stats in dispatcher.stats.items():
        pushed.add_metric([name], stats.pushed)
        failed.add_metric([name], stats.failed)
        dropped.add_metric([name], stats.dropped)
        if stats.last_success_at is not None:
            last.add_metric([name], stats.last_success_at)
    yield from (pushed, failed, dropped, last)
