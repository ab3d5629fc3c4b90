"""Grafana dashboards: generated output up to date, valid PromQL, conventions, provisioning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import REPO_ROOT, promtool_binary, run_tool
from tests.support.promql import (
    all_dashboard_queries,
    dashboard_files,
    documented_metrics,
    iter_panels,
    load_dashboard,
    metric_names,
    recording_rule_names,
    substitute_grafana_variables,
    used_variables,
)

DASHBOARDS = REPO_ROOT / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
VARIABLE_VALUES = {"model": "churn", "column": "age", "datasource": "prometheus"}
EXPECTED_FILES = {"drift-overview.json", "data-quality.json", "model-quality.json", "monitor-health.json"}


def _dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, load_dashboard(path)) for path in dashboard_files()]


def _by_file() -> Any:
    return pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.name)


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_dashboards_are_the_four_expected_files() -> None:
    assert {path.name for path in dashboard_files()} == EXPECTED_FILES


def test_dashboards_match_generate_py_output(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--output-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    generated = {path.name: path.read_text() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_text() for path in dashboard_files()}
    assert generated.keys() == committed.keys()
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"{stale} differ from generate.py's output: run python dashboards/generate.py"


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    queries = all_dashboard_queries()
    assert len(queries) > 40
    groups = [
        {
            "name": query.where,
            "rules": [
                {
                    "record": f"dashboard_query_{index}",
                    "expr": substitute_grafana_variables(query.expr, VARIABLE_VALUES),
                }
            ],
        }
        for index, query in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    output = run_tool([promtool_binary(), "check", "rules", str(rule_file)])
    assert f"SUCCESS: {len(queries)} rules found" in output


def test_dashboard_queries_use_only_documented_metrics_and_recording_rules() -> None:
    known = documented_metrics() | recording_rule_names() | {"up"}
    for query in all_dashboard_queries():
        names = metric_names(query.expr)
        assert names, f"{query.where}: no metric found in {query.expr!r}"
        assert not names - known, f"{query.where} reads unknown metrics {sorted(names - known)}"


@_by_file()
def test_dashboard_has_grafana_11_metadata_and_variables(path: Path) -> None:
    name, dashboard = path.name, load_dashboard(path)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"].startswith("drift-monitor-")
    assert dashboard["title"].startswith("Drift monitor / ")
    assert dashboard["description"]
    variables = _variables(dashboard)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == "prometheus"
    assert variables["model"]["type"] == "query"
    assert variables["model"]["definition"].startswith("label_values(")
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, f"{name} variable {variable['name']}"
    used = set().union(
        *(used_variables(target["expr"]) for p in iter_panels(dashboard) for target in p.get("targets", []))
    )
    used |= {p["repeat"] for p in iter_panels(dashboard) if p.get("repeat")}
    assert used <= set(variables), f"{name} uses undefined variables {used - set(variables)}"
    assert set(variables) - {"datasource"} <= used | {"model"}, f"{name} defines unused variables"


@_by_file()
def test_dashboard_panels_have_description_unit_thresholds_and_uid_datasource(path: Path) -> None:
    name, dashboard = path.name, load_dashboard(path)
    panels = list(iter_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    for panel in panels:
        where = f"{name} panel {panel['id']} {panel['title']!r}"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where
        if panel["type"] == "row":
            continue
        assert len(panel.get("description", "")) >= 40, f"{where}: description missing or too short"
        assert panel["datasource"] == DATASOURCE, where
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{where}: no unit"
        assert defaults["thresholds"]["steps"], f"{where}: no thresholds"
        targets = panel["targets"]
        assert targets, f"{where}: no query"
        assert len({target["refId"] for target in targets}) == len(targets), f"{where}: duplicate refIds"
        for target in targets:
            assert target["datasource"] == DATASOURCE, where


def test_dashboards_have_distinct_uids() -> None:
    uids = [dashboard["uid"] for _, dashboard in _dashboards()]
    assert len(uids) == len(set(uids))


def test_provisioning_declares_the_uid_the_dashboards_default_to() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [prometheus] = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["uid"] == "prometheus"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "drift-monitor.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_provisioned_scrape_interval_matches_prometheus_config() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    prometheus = yaml.safe_load((REPO_ROOT / "rules" / "prometheus.yml").read_text())
    time_interval = datasources["datasources"][0]["jsonData"]["timeInterval"]
    assert time_interval == prometheus["global"]["scrape_interval"]
