"""The repository's rules and dashboard queries in a real Prometheus scraping a stand-in monitor.

The stand-in (fake_monitor.py) serves every metric of docs/metrics.md with values that meet the drift
alert conditions. Prometheus runs with the config from tests/support/processes.py's
render_prometheus_config (1 s scrape and evaluation, the repository's unmodified rule files,
alerting to a real Alertmanager). The end-to-end tests of the real monitor can reuse the same
helpers with ``start_monitor`` instead of the stand-in.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.observability.fake_monitor import COLUMNS, MODEL, REGRESSION_MODEL, FakeMonitor
from tests.support.processes import (
    RunningProcess,
    free_port,
    http_get,
    poll_until,
    promtool_binary,
    start_prometheus,
    write_prometheus_config,
)
from tests.support.promql import Query, all_dashboard_queries, substitute_grafana_variables

pytestmark = pytest.mark.integration

DEADLINE = 45.0
# As Grafana substitutes "All" of a multi-value variable: a regex alternation of every value.
VARIABLES = {"model": f"({MODEL}|{REGRESSION_MODEL})", "column": f"({'|'.join(COLUMNS)})"}
# Alerts whose conditions the stand-in meets; with the repository's `for:` they stay pending here.
EXPECTED_PENDING = {
    ("DriftMonitorDatasetDrift", ""),
    ("DriftMonitorFeatureDrift", "age"),
    ("DriftMonitorTargetDrift", "churned"),
    ("DriftMonitorPredictionDrift", "churn_probability"),
    ("DriftMonitorHighMissingValues", "age"),
    ("DriftMonitorModelQualityDrop", ""),
    ("DriftMonitorEstimatedQualityDrop", ""),
    ("DriftMonitorCriticalTestFailed", ""),
    ("DriftMonitorContractViolations", "age"),
}


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, fake_monitor: FakeMonitor, alertmanager: RunningProcess
) -> Iterator[RunningProcess]:
    tmp = tmp_path_factory.mktemp("prometheus")
    config = write_prometheus_config(
        tmp / "prometheus.yml",
        fake_monitor.target,
        alertmanager_target=alertmanager.base_url.removeprefix("http://"),
    )
    process = start_prometheus(config, tmp / "data", free_port(), log_path=tmp / "prometheus.log")
    yield process
    process.stop()


def _api(prometheus: RunningProcess, path: str, **params: str) -> Any:
    url = f"{prometheus.base_url}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    status, body = http_get(url, timeout=5)
    assert status == 200, f"{url}: {status} {body[:500]!r}"
    return json.loads(body)["data"]


def _instant(prometheus: RunningProcess, expr: str) -> list[dict[str, Any]]:
    data = _api(prometheus, "query", query=expr)
    result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
    return result


def _empty_queries(prometheus: RunningProcess, queries: list[Query]) -> list[str]:
    return [query.where for query in queries if not _instant(prometheus, query.expr)]


def test_fake_monitor_metrics_pass_promtool_check(fake_monitor: FakeMonitor) -> None:
    checked = subprocess.run(
        [promtool_binary(), "check", "metrics"],
        input=fake_monitor.metrics_text(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_loads_rules_and_evaluates_them_without_errors(prometheus: RunningProcess) -> None:
    def evaluated_groups() -> list[dict[str, Any]] | None:
        groups: list[dict[str, Any]] = _api(prometheus, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        # lastEvaluation is Go's zero time until the rule has been evaluated once
        evaluated = [rule for rule in rules if not rule.get("lastEvaluation", "0001").startswith("0001")]
        return groups if rules and len(evaluated) == len(rules) else None

    groups = poll_until(evaluated_groups, timeout=DEADLINE, message="every rule evaluated once")
    assert {group["name"] for group in groups} == {
        "drift_monitor.recording",
        "drift_monitor.drift",
        "drift_monitor.tests",
        "drift_monitor.health",
    }
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert not unhealthy


def test_prometheus_sends_to_the_given_alertmanager(
    prometheus: RunningProcess, alertmanager: RunningProcess
) -> None:
    active = poll_until(
        lambda: _api(prometheus, "alertmanagers")["activeAlertmanagers"],
        timeout=DEADLINE,
        message="Prometheus to discover Alertmanager",
    )
    assert [am["url"] for am in active] == [f"{alertmanager.base_url}/api/v2/alerts"]


def test_drift_alerts_from_a_real_scrape_carry_job_instance_and_annotations(
    prometheus: RunningProcess, fake_monitor: FakeMonitor
) -> None:
    def pending() -> dict[tuple[str, str], dict[str, Any]] | None:
        alerts = _api(prometheus, "alerts")["alerts"]
        found = {(a["labels"]["alertname"], a["labels"].get("column", "")): a for a in alerts}
        return found if EXPECTED_PENDING <= found.keys() else None

    alerts = poll_until(pending, timeout=DEADLINE, message=f"pending alerts {sorted(EXPECTED_PENDING)}")
    for key in EXPECTED_PENDING:
        alert = alerts[key]
        assert alert["state"] == "pending", key  # the repository's `for:` still applies
        assert alert["labels"]["job"] == "drift-monitor"
        assert alert["labels"]["instance"] == fake_monitor.target
        assert alert["labels"]["model"] == MODEL
        assert MODEL in alert["annotations"]["description"]
        assert alert["annotations"]["runbook"].startswith("docs/runbook.md#")
    feature = alerts[("DriftMonitorFeatureDrift", "age")]["annotations"]
    assert feature["description"].endswith(
        "corrected p-value 0.0004, effect size 0.42 (wasserstein_clipped), missing share 25% points from the "
        "reference."
    ), feature["description"]
    region = alerts[("DriftMonitorFeatureDrift", "region")]["annotations"]
    assert region["description"].endswith("not testable (no_current_values), which counts as drift.")
    dataset = alerts[("DriftMonitorDatasetDrift", "")]["annotations"]
    assert dataset["value"] == "2 column(s)"
    assert dataset["description"].endswith("with AUC 0.74, explained most by age.")
    # two confirmed feature columns: the inhibit-only alert needs three
    assert ("DriftMonitorManyColumnsDrifted", "") not in alerts
    # result alerts link to the stored report in force; health alerts have no report
    report = alerts[("DriftMonitorCriticalTestFailed", "")]["annotations"]["report"]
    assert report.startswith(f"/v1/models/{MODEL}/report?at=")
    assert float(report.split("at=")[1]) > 1.7e9


def test_every_dashboard_query_returns_data(prometheus: RunningProcess) -> None:
    queries = [
        Query(query.where, substitute_grafana_variables(query.expr, VARIABLES))
        for query in all_dashboard_queries()
    ]
    assert len(queries) > 40
    # rate() needs two scrapes and the recording rules one evaluation after that: poll.
    poll_until(
        lambda: not _empty_queries(prometheus, queries),
        timeout=DEADLINE,
        message="every dashboard query to return data",
        on_timeout=lambda: "empty: " + "\n".join(_empty_queries(prometheus, queries)),
    )


def test_recorded_series_keep_job_and_instance(prometheus: RunningProcess, fake_monitor: FakeMonitor) -> None:
    expr = "model_column:drift_monitor_column_missing_values_ratio:current_minus_reference"
    [series] = poll_until(
        lambda: [s for s in _instant(prometheus, expr) if s["metric"].get("column") == "age"],
        timeout=DEADLINE,
        message=expr,
    )
    assert series["metric"]["job"] == "drift-monitor"
    assert series["metric"]["instance"] == fake_monitor.target
    assert float(series["value"][1]) == 0.25


def test_rendered_prometheus_config_passes_promtool_check(prometheus: RunningProcess) -> None:
    config = Path(next(arg.split("=", 1)[1] for arg in prometheus.args if arg.startswith("--config.file=")))
    checked = subprocess.run(
        [promtool_binary(), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
