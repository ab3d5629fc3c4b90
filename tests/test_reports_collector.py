"""Metrics of tests, stored reports and exporters, and their exposition passes promtool."""

from __future__ import annotations

import subprocess
from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest

from monitor_service.collector import DriftCollector
from monitor_service.config import MonitorConfig, ReportsConfig
from monitor_service.exporters import ExportDispatcher
from monitor_service.model_state import ModelStats
from monitor_service.reports import MemoryBackend, ReportStore
from monitor_service.reports_collector import ReportsCollector
from monitor_service.results import CalculationResult, ModelStatus, TestOutcome
from monitor_service.service import MonitorService
from tests.support.processes import promtool_binary

T0 = 1_764_450_000.0


def _result(**overrides: object) -> CalculationResult:
    values: dict[str, object] = {
        "model": "diamonds",
        "finished_at": T0,
        "duration_seconds": 0.5,
        "current_rows": 400,
        "reference_rows": 10_000,
        "drift_share": 0.5,
        "dataset_drift": False,
        "drifted_columns": 0,
        "tested_columns": 9,
        "tests": (
            TestOutcome("row_count", "row_count", None, "pass", False, 400.0, "rows"),
            TestOutcome("missing_share:carat", "missing_share", "carat", "fail", True, 17.0, "nulls"),
            TestOutcome("constant:cut", "constant", "cut", "skip", False, None, "window too small"),
        ),
    }
    return CalculationResult(**{**values, **overrides})  # type: ignore[arg-type]


class _Broken:
    name = "broken"

    def push(self, model: str, result: CalculationResult, snapshot: str) -> None:
        raise ConnectionError(f"target down: {model} at {result.finished_at}, {len(snapshot)} bytes")

    def close(self) -> None:
        return None


class _Published:
    """The models' stats as the collector reads them; `publish` replaces the latest result."""

    def __init__(self, config: MonitorConfig) -> None:
        self.stats: list[ModelStats] = MonitorService.build(config).stats()

    def publish(self, result: CalculationResult) -> None:
        self.stats = [replace(s, status=ModelStatus().succeeded(result)) for s in self.stats]


def _registry(config: MonitorConfig) -> tuple[CollectorRegistry, _Published, ReportStore, ExportDispatcher]:
    registry = CollectorRegistry()
    monitor = _Published(config)
    registry.register(DriftCollector(lambda: monitor.stats, "0.7.test"))
    store = ReportStore("diamonds", MemoryBackend(), ReportsConfig(max_age=None))
    dispatcher = ExportDispatcher([_Broken()])
    registry.register(ReportsCollector({"diamonds": store}, dispatcher))
    return registry, monitor, store, dispatcher


def test_collector_exports_test_outcomes_with_model_test_and_critical_labels(config: MonitorConfig) -> None:
    registry, monitor, _, _ = _registry(config)
    monitor.publish(_result())
    passed = registry.get_sample_value(
        "drift_monitor_test_passed", {"model": "diamonds", "test": "row_count", "critical": "false"}
    )
    failed = registry.get_sample_value(
        "drift_monitor_test_passed", {"model": "diamonds", "test": "missing_share:carat", "critical": "true"}
    )
    assert (passed, failed) == (1.0, 0.0)
    value = registry.get_sample_value(
        "drift_monitor_test_value", {"model": "diamonds", "test": "missing_share:carat"}
    )
    assert value == 17.0
    skipped = {"model": "diamonds", "test": "constant:cut", "critical": "false"}
    assert registry.get_sample_value("drift_monitor_test_passed", skipped) is None


def test_reports_collector_exports_the_newest_report_and_export_health(config: MonitorConfig) -> None:
    registry, _, store, dispatcher = _registry(config)
    assert (
        registry.get_sample_value("drift_monitor_last_report_timestamp_seconds", {"model": "diamonds"})
        is None
    )
    store.put(_result(), "{}")
    store.put(replace(_result(), finished_at=T0 + 300.1234), '{"a": 1}')
    assert registry.get_sample_value(
        "drift_monitor_last_report_timestamp_seconds", {"model": "diamonds"}
    ) == round(T0 + 300.1234, 3)
    assert registry.get_sample_value("drift_monitor_reports_stored", {"model": "diamonds"}) == 2
    assert registry.get_sample_value("drift_monitor_reports_stored_bytes", {"model": "diamonds"}) == 10
    dispatcher.submit("diamonds", _result(), "{}")
    assert dispatcher.drain(10)
    assert registry.get_sample_value("drift_monitor_export_failures_total", {"exporter": "broken"}) == 1
    assert registry.get_sample_value("drift_monitor_exports_total", {"exporter": "broken"}) == 0
    dispatcher.close()


def test_metrics_with_tests_and_reports_pass_promtool_check_metrics(config: MonitorConfig) -> None:
    registry, monitor, store, dispatcher = _registry(config)
    monitor.publish(_result())
    store.put(_result(), "{}")
    dispatcher.submit("diamonds", _result(), "{}")
    assert dispatcher.drain(10)
    done = subprocess.run(
        [promtool_binary(), "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
        check=False,
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).decode().splitlines()
        if "test_passed" in line or "test_value" in line or "report" in line or "export" in line
    ]
    assert not problems, problems
    dispatcher.close()
