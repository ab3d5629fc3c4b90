"""Find the PromQL in the repository's dashboards and rules, and make it runnable outside Grafana.

    for query in all_dashboard_queries():
        expr = substitute_grafana_variables(query.expr, {"model": "diamonds", "column": "carat"})
        ...  # parse it (promtool check rules) or run it against a real Prometheus

Used by the offline checks (tests/observability) and usable by end-to-end tests that run every
dashboard query against a Prometheus scraping the real monitor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO_ROOT / "dashboards"
RULES_DIR = REPO_ROOT / "rules"
METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"

# Grafana's built-in interval variables, in every spelling Grafana accepts.
_BUILTIN_INTERVAL = re.compile(r"\$\{?__(?:rate_interval|interval|range)(?:_ms|_s)?\}?")
# $name, ${name}, ${name:format}, [[name]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<body>.*),\s*(?P<label>\w+)\s*\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<body>.*)\)\s*$", re.DOTALL)
# Metric names as the dashboards and rules write them: documented metrics, process metrics, `up`,
# and recording rules (level:metric:operations).
_METRIC_NAME = re.compile(
    r"(?<![\w:\"'])(?:[a-z_]+:[a-z0-9_]+:[a-z0-9_]+|drift_monitor_[a-z0-9_]+|process_[a-z0-9_]+|up)(?![\w:\"'])"
)


class Query(NamedTuple):
    where: str  # "drift-overview.json panel 7 'Dataset drift now' target A"
    expr: str


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variable_query(variable: Mapping[str, Any]) -> str | None:
    """The PromQL inside a query variable's ``label_values(EXPR, label)``/``query_result(EXPR)``."""
    query = variable.get("query")
    text = query.get("query", "") if isinstance(query, Mapping) else (query or "")
    for pattern in (_LABEL_VALUES, _QUERY_RESULT):
        match = pattern.match(text)
        if match:
            return match.group("body")
    return None


def dashboard_queries(path: Path) -> list[Query]:
    dashboard = load_dashboard(path)
    queries: list[Query] = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                where = (
                    f"{path.name} panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}"
                )
                queries.append(Query(where, target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            expr = variable_query(variable)
            if expr:
                queries.append(Query(f"{path.name} variable ${variable['name']}", expr))
    return queries


def all_dashboard_queries() -> list[Query]:
    return [query for path in dashboard_files() for query in dashboard_queries(path)]


def rule_files() -> list[Path]:
    return sorted(path for path in RULES_DIR.glob("*.yml") if _is_rule_file(path))


def _is_rule_file(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    return isinstance(data, dict) and "groups" in data


def load_rules(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def rule_queries() -> list[Query]:
    queries = []
    for path in rule_files():
        for rule in load_rules(path):
            name = rule.get("alert") or rule.get("record")
            queries.append(Query(f"{path.name} {name}", rule["expr"]))
    return queries


def recording_rule_names() -> set[str]:
    return {rule["record"] for path in rule_files() for rule in load_rules(path) if "record" in rule}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for path in rule_files() for rule in load_rules(path) if "alert" in rule]


def substitute_grafana_variables(expr: str, values: Mapping[str, str], interval: str = "1m") -> str:
    """Replace Grafana's interval variables with ``interval`` and template variables with ``values``.

    A variable missing from ``values`` raises KeyError, so a dashboard using an undefined variable
    fails loudly instead of producing a query that happens to parse.
    """
    expr = _BUILTIN_INTERVAL.sub(interval, expr)

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values[name]

    return _VARIABLE.sub(value, expr)


def used_variables(expr: str) -> set[str]:
    expr = _BUILTIN_INTERVAL.sub("", expr)
    return {next(group for group in match.groups() if group) for match in _VARIABLE.finditer(expr)}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (documented prefixes, process metrics, up, recording rules)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(_METRIC_NAME.findall(without_strings))


def documented_metrics() -> set[str]:
    """Every sample name docs/metrics.md promises, histogram series and process metrics included."""
    names: set[str] = set()
    for line in METRICS_DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in re.findall(r"`((?:drift_monitor|process)_[a-z0-9_]*)`", cells[0]):
            names.add(name)
            if len(cells) > 1 and cells[1] == "histogram":
                names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
    return names
