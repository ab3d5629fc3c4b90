"""The Prometheus side: rule files, their promtool unit tests, the Prometheus config, the runbook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import REPO_ROOT, RULE_FILES, promtool_binary, run_tool
from tests.support.promql import (
    alert_rules,
    documented_metrics,
    load_rules,
    metric_names,
    recording_rule_names,
    rule_queries,
)

RULES = REPO_ROOT / "rules"
RULE_TESTS = sorted((RULES / "tests").glob("*.yml"))
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"

EXPECTED_ALERTS = {
    "DriftMonitorDatasetDrift",
    "DriftMonitorManyColumnsDrifted",
    "DriftMonitorFeatureDrift",
    "DriftMonitorTargetDrift",
    "DriftMonitorPredictionDrift",
    "DriftMonitorHighMissingValues",
    "DriftMonitorModelQualityDrop",
    "DriftMonitorEstimatedQualityDrop",
    "DriftMonitorCriticalTestFailed",
    "DriftMonitorDown",
    "DriftMonitorMemberDown",
    "DriftMonitorClusterDown",
    "DriftMonitorNoDataIngested",
    "DriftMonitorContractViolations",
    "DriftMonitorCalculationsFailing",
    "DriftMonitorResultsStale",
    "DriftMonitorHighCPU",
    "DriftMonitorHighMemory",
}
# Alerts about the monitor process as a whole: they carry no model label.
PROCESS_ALERTS = {
    "DriftMonitorDown",
    "DriftMonitorMemberDown",
    "DriftMonitorHighCPU",
    "DriftMonitorHighMemory",
}
# Cluster mode: about all the members of a cluster at once.
CLUSTER_ALERTS = {"DriftMonitorClusterDown"}
COLUMN_ALERTS = {
    "DriftMonitorFeatureDrift",
    "DriftMonitorTargetDrift",
    "DriftMonitorPredictionDrift",
    "DriftMonitorHighMissingValues",
    "DriftMonitorContractViolations",
}
# Alerts on the monitor's confirmed drift state: the confirmation happened in the monitor, so their
# `for:` is at most one default schedule interval (60 s); every other alert waits at least 5 minutes.
CONFIRMED_ALERTS = {
    "DriftMonitorDatasetDrift",
    "DriftMonitorManyColumnsDrifted",
    "DriftMonitorFeatureDrift",
    "DriftMonitorTargetDrift",
    "DriftMonitorPredictionDrift",
}
DEFAULT_SCHEDULE_SECONDS = 60
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match and duration, f"unsupported duration {duration!r}"
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _unit_tests() -> list[dict[str, Any]]:
    return [test for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]]


def _runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text()
    anchors = set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    for heading in re.findall(r"^#+\s+(.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_rule_files_pass_promtool_check() -> None:
    output = run_tool([promtool_binary(), "check", "rules", *map(str, RULE_FILES)])
    assert "SUCCESS" in output


def test_rule_unit_tests_pass_promtool_test() -> None:
    assert RULE_TESTS, "no promtool unit tests under rules/tests"
    run_tool([promtool_binary(), "test", "rules", *map(str, RULE_TESTS)], timeout=120)


def test_prometheus_config_passes_promtool_check() -> None:
    output = run_tool([promtool_binary(), "check", "config", str(RULES / "prometheus.yml")])
    assert "2 rule files found" in output


def test_prometheus_config_scrapes_monitor_and_model_service() -> None:
    config = yaml.safe_load((RULES / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["drift-monitor"]["static_configs"][0]["targets"] == ["monitor:8000"]
    assert jobs["example-model-service"]["static_configs"][0]["targets"] == ["model-service:8080"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert [RULES / name for name in config["rule_files"]] == list(RULE_FILES)


def test_alert_rules_are_the_expected_set() -> None:
    assert {rule["alert"] for rule in alert_rules()} == EXPECTED_ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_rule_has_severity_annotations_and_for(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook"} <= set(annotations)
    assert re.fullmatch(r"docs/runbook\.md#[a-z0-9-]+", annotations["runbook"])
    text = annotations["summary"] + annotations["description"]
    if rule["alert"] in PROCESS_ALERTS:
        assert "$labels.instance" in text
    elif rule["alert"] in CLUSTER_ALERTS:
        assert "$labels.cluster" in text
    else:
        assert "$labels.model" in text
    if rule["alert"] in COLUMN_ALERTS:
        assert "$labels.column" in text
    if "value" in annotations:
        assert "$value" in annotations["value"]
        assert "$value" in annotations["description"]
    if rule["alert"] in CONFIRMED_ALERTS:
        assert "_confirmed" in rule["expr"]
        assert 0 < _seconds(rule["for"]) <= DEFAULT_SCHEDULE_SECONDS
    else:  # nothing else fires on one evaluation
        assert _seconds(rule["for"]) >= 300


def test_rules_header_states_the_real_default_schedule() -> None:
    from monitor_service.config import ScheduleConfig

    assert ScheduleConfig().every == DEFAULT_SCHEDULE_SECONDS
    header = (RULES / "drift_monitor_alerts.yml").read_text().split("groups:")[0]
    assert "`schedule.every` (60 s by default)" in header


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_rule_runbook_anchor_exists(rule: dict[str, Any]) -> None:
    anchor = rule["annotations"]["runbook"].split("#", 1)[1]
    assert anchor in _runbook_anchors(), f"docs/runbook.md has no anchor {anchor!r}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_rule_has_firing_and_quiet_unit_tests(rule: dict[str, Any]) -> None:
    cases = [case for test in _unit_tests() for case in test.get("alert_rule_test", [])]
    mine = [case for case in cases if case["alertname"] == rule["alert"]]
    firing = [case for case in mine if case.get("exp_alerts")]
    quiet = [case for case in mine if not case.get("exp_alerts")]
    assert firing, f"no promtool case where {rule['alert']} fires"
    assert quiet, f"no promtool case where {rule['alert']} stays quiet"
    for case in firing:
        for alert in case["exp_alerts"]:
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
            assert set(alert["exp_annotations"]) == set(rule["annotations"])


def test_recording_rules_follow_naming_convention_and_have_unit_tests() -> None:
    tested = " ".join(case["expr"] for test in _unit_tests() for case in test.get("promql_expr_test", []))
    for name in recording_rule_names():
        assert RECORD_NAME.match(name), f"{name} is not level:metric:operations"
        assert name in tested, f"no promql_expr_test for {name}"


def test_recording_rules_keep_job_and_instance() -> None:
    # The alerts built on them need job/instance for Alertmanager's inhibition; cluster mode's
    # halves (over the members of a cluster) keep job and cluster instead.
    for path in RULE_FILES:
        for rule in load_rules(path):
            for grouping in re.findall(r"\b(?:sum|max|min|avg) by \(([^)]*)\)", rule["expr"]):
                labels = {label.strip() for label in grouping.split(",")}
                assert {"job", "instance"} <= labels or {"job", "cluster"} <= labels, (
                    f"{rule.get('record') or rule.get('alert')}: by ({grouping})"
                )


def test_cluster_halves_aggregate_over_members_and_single_node_halves_do_not() -> None:
    # Every selector of a series the members of a cluster all serve says which half it is in.
    for path in RULE_FILES:
        for rule in load_rules(path):
            expr = rule["expr"]
            if 'cluster!=""' in expr and "up{" not in expr:
                assert 'cluster=""' in expr, rule.get("record") or rule.get("alert")
                assert "without (instance)" in expr or "by (job, cluster," in expr, rule.get(
                    "record"
                ) or rule.get("alert")


def test_rule_expressions_use_only_documented_metrics() -> None:
    known = documented_metrics() | recording_rule_names() | {"up"}
    for query in rule_queries():
        unknown = metric_names(query.expr) - known
        assert not unknown, f"{query.where} reads undocumented metrics {sorted(unknown)}"


def test_runbook_mentions_every_alert() -> None:
    text = RUNBOOK.read_text()
    for alert in EXPECTED_ALERTS:
        assert f"`{alert}`" in text, alert


def test_rule_test_files_reference_existing_rule_files() -> None:
    for path in RULE_TESTS:
        for name in yaml.safe_load(path.read_text())["rule_files"]:
            assert (path.parent / name).resolve() in {Path(rule).resolve() for rule in RULE_FILES}, name
