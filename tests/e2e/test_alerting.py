"""End to end alerting with real programs only: the monitor, Prometheus and Alertmanager.

The real monitor process (``python -m monitor_service serve``, thread executor) serves four models
over the bundled diamonds data, calculated every second or two:

    calm       regression, production split (no drift)
    shifted    regression, drifted split (expensive diamonds only): dataset drift and many
               drifted columns; its rows arrive without the price, which follows through the
               labels endpoint
    partial    the same drifted traffic on two features only (carat, depth): dataset drift caused
               by one column (carat), whose own alert must not be muted (see below)
    expensive  binary classification "price >= 5,000", production split, so that the
               classification panels have data; its quality equals its baseline (noise only)
    degraded   regression, production split, but the true prices are 1.3 times higher (concept
               drift): a real quality drop, DriftMonitorModelQualityDrop fires
    unlabelled the classifier of ``expensive`` whose labels never arrive: quality skipped with
               ``no_labels``, estimated without labels (CBPE) instead

Every model keeps the default tested drift mode and confirmation (3 calculations) but sets
``drift.turnover: false``: the rows arrive once, so the window never turns over and the default
confirmation (which waits for a full turnover, docs/statistics.md) would never confirm anything.

A real Prometheus scrapes it every second with the repository's recording rules and a copy of its
alert rules in which only ``for:`` is shortened (and ``keep_firing_for:`` added to the drift
group, see :func:`write_short_alert_rules`), and sends to a real Alertmanager running
rules/alertmanager.yml with only the webhook URL and the grouping timers rewritten. Notifications
land in a loopback webhook receiver.

Why DriftMonitorFeatureDrift is checked on two models: rules/alertmanager.yml mutes the
per-column alerts of a model while DriftMonitorManyColumnsDrifted (three or more confirmed drifted
columns with confirmed dataset drift, never notified itself) fires for it. For ``shifted`` its
column alerts reach Alertmanager but are (correctly) never notified; the test checks them in
Alertmanager's API, inhibited by that alert. ``partial`` shows that a dataset drift caused by one
column leaves that column's alert notified, with its labels and annotations.

Everything starts once per module; the test that stops the monitor runs last.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from tests.conftest import DIAMONDS, diamonds_model, rows_of, write_config
from tests.support.processes import (
    MONITOR_JOB,
    RULES_DIR,
    RunningProcess,
    free_port,
    poll_until,
    promtool_binary,
    render_alertmanager_config,
    run_tool,
    start_alertmanager,
    start_monitor,
    start_prometheus,
    write_prometheus_config,
)
from tests.support.promql import Query, all_dashboard_queries, substitute_grafana_variables
from tests.support.webhook import Notification, WebhookReceiver

pytestmark = pytest.mark.integration

DEADLINE = 45.0  # seconds for anything to show up; a normal run needs well under 15
RECORDING_RULES = RULES_DIR / "drift_monitor_recording_rules.yml"
ALERT_RULES = RULES_DIR / "drift_monitor_alerts.yml"
DRIFT_GROUP = "drift_monitor.drift"
# Every `for:` of the copy: the repository's are 1m (confirmed drift) to 30m (by design, see the
# file's header).
SHORT_FOR = "2s"
# Added to the drift group of the copy only, see write_short_alert_rules.
KEEP_FIRING_FOR = "1m"

CALM, SHIFTED, PARTIAL, EXPENSIVE = "calm", "shifted", "partial", "expensive"
DEGRADED, UNLABELLED = "degraded", "unlabelled"
MODELS = (CALM, SHIFTED, PARTIAL, EXPENSIVE, DEGRADED, UNLABELLED)
CONCEPT_DRIFT = 1.3  # degraded: the true prices are this much higher than the model believes
ROWS = 3000
BATCH = 1000
# Drift with large effects on the drifted split (normed Wasserstein > 1 against a 0.1 floor).
DRIFTED_COLUMNS = {"carat", "x", "y", "z"}
PARTIAL_COLUMNS = {"carat"}  # of carat and depth, only carat drifts there
CONFIRM = {"turnover": False}
FEATURES = ("carat", "depth", "table", "x", "y", "z", "cut", "color", "clarity")

# Dashboard queries that cannot return data here, with the reason; keep this short.
NO_DATA_EXPECTED = {
    # data-quality.json "Failed tests": lists failed tests only, and the stack's windows fail none
    # (tests/observability/test_prometheus_live.py shows it with data from a failing test).
    "group_left (critical)": "empty while every test passes",
}


# ------------------------------------------------------------------------------------ rule copy


def write_short_alert_rules(path: Path) -> Path:
    """Write a copy of rules/drift_monitor_alerts.yml fit for a one-minute test, and return it.

    Changed, textually, so that every expression, label, annotation and comment stays the
    repository's own (checked against the parsed original below):

    * every ``for:`` becomes ``2s``: the repository's 5m..1h would not fire within a test;
    * every ``keep_firing_for:`` (the drift and quality alerts keep firing 10m through a monitor
      outage, so that DriftMonitorDown, after its own ``for:``, finds them active and mutes them)
      becomes ``1m``, longer than the shortened ``for:`` of DriftMonitorDown.

    No range vector is shortened: the recording rules' rate5m/ratio_rate30m/avg_over_time[1h] are
    computed from whatever history exists, and the drift and Down alerts read plain gauges and
    ``up``. The only expression that cannot have data in a fresh Prometheus compares with one day
    earlier (NO_DATA_EXPECTED).
    """
    lines: list[str] = []
    for line in ALERT_RULES.read_text().splitlines(keepends=True):
        short = re.match(r"^(?P<indent>\s+)(?P<key>for|keep_firing_for): \S+\s*$", line)
        if short:
            value = SHORT_FOR if short["key"] == "for" else KEEP_FIRING_FOR
            lines.append(f"{short['indent']}{short['key']}: {value}\n")
        else:
            lines.append(line)
    path.write_text("".join(lines))

    original, copy = yaml.safe_load(ALERT_RULES.read_text()), yaml.safe_load(path.read_text())
    for group_original, group_copy in zip(original["groups"], copy["groups"], strict=True):
        assert group_copy["name"] == group_original["name"]
        for rule, rule_copy in zip(group_original["rules"], group_copy["rules"], strict=True):
            has_for = "for" in rule
            assert rule_copy.pop("for", None) == (SHORT_FOR if has_for else None), rule["alert"]
            keeps = "keep_firing_for" in rule
            assert rule_copy.pop("keep_firing_for", None) == (KEEP_FIRING_FOR if keeps else None), rule[
                "alert"
            ]
            unchanged = {key: value for key, value in rule.items() if key not in ("for", "keep_firing_for")}
            assert rule_copy == unchanged, rule["alert"]
    assert any(
        "keep_firing_for" in r for g in original["groups"] for r in g["rules"] if g["name"] == DRIFT_GROUP
    )
    run_tool([promtool_binary(), "check", "rules", str(path)])
    return path


# ------------------------------------------------------------------------------------- fixtures


def _classified(frame: pd.DataFrame) -> pd.DataFrame:
    """The diamonds rows as a binary "expensive" classifier sees them: the label price >= 5,000,
    the regression prediction turned into a predicted label and a probability."""
    out = frame.drop(columns=["price", "prediction"])
    out["expensive"] = (frame["price"] >= 5000).astype(int)
    out["prediction"] = (frame["prediction"] >= 5000).astype(int)
    out["prob_expensive"] = (1 / (1 + np.exp(-(frame["prediction"] - 5000) / 1500))).round(6)
    return out


def _models(tmp: Path) -> list[dict[str, Any]]:
    # The classification reference is derived from the tracked regression reference exactly as the
    # traffic below is derived from the production split, so the two agree (no drift) and the test
    # depends on no generated file.
    reference = tmp / "reference_classification.csv"
    _classified(pd.read_csv(DIAMONDS / "reference.csv")).to_csv(reference, index=False)
    every_second = {"every": "1s", "min_rows": 100}
    # The two extra models are calculated half as often: the single calculation worker stays
    # below one core on a 2-core machine.
    every_two = {"every": "2s", "min_rows": 100}
    # The two quality-only models change nothing after their rows arrive: every 3 s is plenty.
    every_three = {"every": "3s", "min_rows": 100}
    columns = diamonds_model()["columns"]
    two_features = {**columns, "numerical": ["carat", "depth"], "categorical": []}
    classifier = {**columns, "target": "expensive", "probability": "prob_expensive", "positive_label": "1"}
    return [
        diamonds_model(name=CALM, schedule=every_second, drift=CONFIRM),
        diamonds_model(name=SHIFTED, schedule=every_second, drift=CONFIRM),
        diamonds_model(
            name=PARTIAL, schedule=every_two, columns=two_features, drift=CONFIRM, metrics=["data_drift"]
        ),
        diamonds_model(
            name=EXPENSIVE,
            task="classification",
            reference=str(reference),
            columns=classifier,
            schedule=every_two,
            drift=CONFIRM,
        ),
        # degraded also carries event times and a contract on carat (its rows break it now and
        # then, and use a missing-value code): quality-only, so nulls there change no verdict.
        diamonds_model(
            name=DEGRADED,
            schedule=every_three,
            metrics=["model_quality"],
            columns={**columns, "timestamp": "event_time"},
            contracts={"columns": {"carat": {"max": 10, "missing": [-1], "on_violation": "nullify"}}},
        ),
        diamonds_model(
            name=UNLABELLED,
            task="classification",
            reference=str(reference),
            columns=classifier,
            schedule=every_three,
            metrics=["model_quality"],
        ),
    ]


@dataclass
class Stack:
    monitor: RunningProcess
    prometheus: RunningProcess
    alertmanager: RunningProcess
    webhook: WebhookReceiver

    @property
    def instance(self) -> str:
        """The monitor's `instance` label: the scrape target host:port."""
        return self.monitor.base_url.removeprefix("http://")


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Alertmanager (with its webhook), the monitor and Prometheus, started once, stopped by PID."""
    tmp = tmp_path_factory.mktemp("alerting")
    with WebhookReceiver() as webhook:
        am_config = tmp / "alertmanager.yml"
        # repeat_interval 2s: a group that is not muted is notified again every 2-3 s, so "no drift
        # notification after DriftMonitorDown" means something (see the last test).
        am_config.write_text(
            render_alertmanager_config(
                webhook.url, group_wait="1s", group_interval="1s", repeat_interval="2s"
            )
        )
        alertmanager = start_alertmanager(am_config, tmp / "am-data", free_port(), log_path=tmp / "am.log")
        monitor: RunningProcess | None = None
        prometheus: RunningProcess | None = None
        try:
            config = write_config(tmp / "monitor.yaml", _models(tmp), executor="thread")
            monitor = start_monitor(config, free_port(), tmp / "monitor.log")
            prometheus_config = write_prometheus_config(
                tmp / "prometheus.yml",
                monitor.base_url.removeprefix("http://"),
                alertmanager_target=alertmanager.base_url.removeprefix("http://"),
                rule_files=(RECORDING_RULES, write_short_alert_rules(tmp / "alerts-short-for.yml")),
            )
            prometheus = start_prometheus(
                prometheus_config, tmp / "prom-data", free_port(), log_path=tmp / "prometheus.log"
            )
            yield Stack(monitor, prometheus, alertmanager, webhook)
        finally:
            if prometheus is not None:
                prometheus.stop()
            if monitor is not None:
                monitor.stop(timeout=20)
            alertmanager.stop()


def _post(url: str, key: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for start in range(0, len(items), BATCH):
        response = requests.post(url, json={key: items[start : start + BATCH]}, timeout=30)
        assert response.status_code == 202, response.text
        answers.append(response.json())
    return answers


@pytest.fixture(scope="module")
def stack(processes: Stack) -> Stack:
    """The processes, after rows for every model and the prices of the `shifted` rows as labels."""
    # Prometheus is ready before its first scrape: let it see the counters at 0 first, so the rows
    # show up as a rate (else model:drift_monitor_rows_ingested:rate5m is 0 and, with the short
    # `for:`, DriftMonitorNoDataIngested fires for every model).
    poll_until(
        lambda: _query(processes, f'drift_monitor_rows_ingested_total{{job="{MONITOR_JOB}"}} == 0'),
        timeout=DEADLINE,
        message="a first scrape of the monitor",
    )
    url = processes.monitor.base_url + "/v1/models"
    # 2 % of calm's depth values are null (the reference has none): the missing share is tested and
    # exported, and stays below drift.min_missing_change (5 points), so it is no drift.
    calm = [
        {**row, "depth": None} if i % 50 == 0 else row for i, row in enumerate(rows_of("production", ROWS))
    ]
    _post(f"{url}/{CALM}/rows", "rows", calm)
    drifted = rows_of("drifted", ROWS)
    _post(f"{url}/{SHIFTED}/rows", "rows", [{k: v for k, v in r.items() if k != "price"} for r in drifted])
    partial_fields = ("request_id", "carat", "depth", "price", "prediction")
    _post(f"{url}/{PARTIAL}/rows", "rows", [{k: r[k] for k in partial_fields} for r in drifted])
    classified = _classified(pd.DataFrame(rows_of("production", ROWS)))
    _post(f"{url}/{EXPENSIVE}/rows", "rows", classified.to_dict(orient="records"))
    unlabelled = classified.drop(columns=["expensive"]).to_dict(orient="records")
    _post(f"{url}/{UNLABELLED}/rows", "rows", unlabelled)
    now = time.time()
    concept_drift = [
        {
            **r,
            "price": r["price"] * CONCEPT_DRIFT,
            "event_time": now - 30 - i % 60,  # reported 30-90 s after the prediction
            "carat": 99.0 if i % 40 == 0 else -1 if i % 40 == 1 else r["carat"],  # 2.5 %: code / breach
        }
        for i, r in enumerate(rows_of("production", ROWS))
    ]
    _post(f"{url}/{DEGRADED}/rows", "rows", concept_drift)
    labels = [{"id": r["request_id"], "target": r["price"]} for r in drifted]
    answers = _post(f"{url}/{SHIFTED}/labels", "labels", labels)
    assert sum(a["matched"] for a in answers) == ROWS, answers
    return processes


# -------------------------------------------------------------------------------------- helpers


def _prom(stack: Stack, path: str, **params: str) -> Any:
    response = requests.get(f"{stack.prometheus.base_url}/api/v1/{path}", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    data = _prom(stack, "query", query=expr)
    result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
    return result


def _am_alerts(stack: Stack, *matchers: str) -> list[dict[str, Any]]:
    """Alertmanager's active alerts (suppressed ones included) matching every matcher."""
    response = requests.get(
        f"{stack.alertmanager.base_url}/api/v2/alerts",
        params=[("filter", matcher) for matcher in matchers],
        timeout=5,
    )
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def _firing(alertname: str, model: str | None = None) -> Callable[[Notification], bool]:
    """Matches a firing notification of the group (alertname, model); the routes group by both."""
    expected = {"alertname": alertname, **({"model": model} if model else {})}

    def match(notification: Notification) -> bool:
        return notification["status"] == "firing" and notification["groupLabels"] == expected

    return match


def _dataset_drift_notification(stack: Stack) -> Notification:
    try:
        return stack.webhook.wait_for(_firing("DriftMonitorDatasetDrift", SHIFTED), timeout=DEADLINE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_describe(stack)}") from None


def _drift_alertnames() -> list[str]:
    """The alerts of the repository's drift group (dataset, column, data-quality, model-quality)."""
    return [
        rule["alert"]
        for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]
        if group["name"] == DRIFT_GROUP
        for rule in group["rules"]
    ]


def _describe(stack: Stack) -> str:
    """What to look at when an expected alert does not show up."""
    try:
        models = requests.get(stack.monitor.base_url + "/v1/models", timeout=5).text
    except requests.RequestException as exc:  # stopped, or not answering
        models = repr(exc)
    alerts = [(a["state"], a["labels"]) for a in _prom(stack, "alerts")["alerts"]]
    return (
        f"monitor log tail:\n{stack.monitor.log_tail(3000)}\n"
        f"GET /v1/models: {models[:3000]}\n"
        f"prometheus alerts: {alerts}\n"
        f"webhook notifications: {[n['groupLabels'] for n in stack.webhook.notifications]}"
    )


def _check_feature_alert(alert: dict[str, Any], model: str, instance: str) -> None:
    labels, annotations = alert["labels"], alert["annotations"]
    column = labels["column"]
    assert labels == {
        "alertname": "DriftMonitorFeatureDrift",
        "model": model,
        "column": column,
        "role": "feature",
        "severity": "info",
        "job": MONITOR_JOB,
        "instance": instance,
    }
    assert annotations["summary"] == f"Feature {column} of model {model} drifted"
    description = annotations["description"]
    assert description.startswith(f"Drift of the feature column {column} of model {model}"), description
    # The numbers come from `query` calls in the annotation template: they must have found the series.
    effect = re.search(r"corrected p-value \S+, effect size (\S+) \(wasserstein_clipped\)", description)
    assert effect and float(effect[1]) > 0.1, description
    assert annotations["runbook"] == "docs/runbook.md#feature-drift"


# ---------------------------------------------------------------------------------------- tests


def test_drifted_traffic_notifies_dataset_drift_with_labels_and_annotations(stack: Stack) -> None:
    note = _dataset_drift_notification(stack)
    [alert] = note["alerts"]
    assert alert["labels"] == {
        "alertname": "DriftMonitorDatasetDrift",
        "model": SHIFTED,
        "severity": "warning",
        "job": MONITOR_JOB,
        "instance": stack.instance,
    }
    annotations = alert["annotations"]
    assert annotations["summary"] == f"Dataset drift for model {SHIFTED}"
    # The value is the number of drifted feature columns, the description repeats it and adds the
    # domain classifier's AUC and top columns (from `query` calls in the template).
    value = re.fullmatch(r"(\d+) column\(s\)", annotations["value"])
    assert value and int(value[1]) >= len(DRIFTED_COLUMNS), annotations["value"]
    description = annotations["description"]
    start = f"Dataset drift of model {SHIFTED} (monitor {stack.instance}) is confirmed: {value[1]} feature"
    assert description.startswith(start), description
    auc = re.search(r"with AUC (\d\.\d\d), explained most by ([\w ]+)\.$", description)
    assert auc and float(auc[1]) > 0.6, description
    assert set(auc[2].split()) <= set(FEATURES), description
    assert annotations["runbook"] == "docs/runbook.md#dataset-drift"
    assert note["receiver"] == "default-webhook"
    assert note["commonLabels"]["severity"] == "warning"


def test_column_alerts_are_notified_unless_many_columns_drifted(stack: Stack) -> None:
    # partial: dataset drift caused by one column; that column's alert is notified all the same.
    def partial_columns(notification: Notification) -> bool:
        columns = {alert["labels"].get("column") for alert in notification["alerts"]}
        return _firing("DriftMonitorFeatureDrift", PARTIAL)(notification) and PARTIAL_COLUMNS == columns

    note = stack.webhook.wait_for(partial_columns, timeout=DEADLINE)
    for alert in note["alerts"]:
        _check_feature_alert(alert, PARTIAL, stack.instance)
    stack.webhook.wait_for(_firing("DriftMonitorDatasetDrift", PARTIAL), timeout=DEADLINE)
    assert not _query(stack, f'ALERTS{{alertname="DriftMonitorManyColumnsDrifted", model="{PARTIAL}"}}')

    # shifted: the column alerts reach Alertmanager, muted by the (never notified) many-columns alert.
    _dataset_drift_notification(stack)
    many = poll_until(
        lambda: _am_alerts(stack, 'alertname="DriftMonitorManyColumnsDrifted"', f'model="{SHIFTED}"'),
        timeout=DEADLINE,
        message="DriftMonitorManyColumnsDrifted of shifted in Alertmanager",
    )
    [many_alert] = many

    def shifted_column_alerts() -> dict[str, dict[str, Any]] | None:
        alerts = _am_alerts(stack, 'alertname="DriftMonitorFeatureDrift"', f'model="{SHIFTED}"')
        by_column = {alert["labels"]["column"]: alert for alert in alerts}
        return by_column if DRIFTED_COLUMNS <= by_column.keys() else None

    alerts = poll_until(shifted_column_alerts, timeout=DEADLINE, message="FeatureDrift alerts of shifted")
    for alert in alerts.values():
        assert alert["status"]["state"] == "suppressed", alert["status"]
        assert alert["status"]["inhibitedBy"] == [many_alert["fingerprint"]], alert["status"]
    for column in DRIFTED_COLUMNS:
        _check_feature_alert(alerts[column], SHIFTED, stack.instance)
    notified = [
        n
        for n in stack.webhook.notifications
        if _firing("DriftMonitorFeatureDrift", SHIFTED)(n)
        or n["groupLabels"].get("alertname") == "DriftMonitorManyColumnsDrifted"
    ]
    assert not notified, notified


def test_no_drift_alert_for_the_calm_model_in_the_same_time(stack: Stack) -> None:
    # Wait for the drifted model's alerts first: the same window of time and of calculations.
    _dataset_drift_notification(stack)
    drift_alerts = set(_drift_alertnames())
    about_calm = [
        (notification["groupLabels"], alert["labels"])
        for notification in stack.webhook.notifications
        for alert in notification["alerts"]
        if alert["labels"].get("model") == CALM and alert["labels"]["alertname"] in drift_alerts
    ]
    assert not about_calm
    # Not even pending in Prometheus.
    pending = [a["labels"] for a in _prom(stack, "alerts")["alerts"] if a["labels"].get("model") == CALM]
    assert not [labels for labels in pending if labels["alertname"] in drift_alerts], pending
    # ... and it is not for lack of results: calm was calculated throughout, never with drift.
    # ([5m] covers everything this Prometheus has scraped.)
    # (On a loaded machine the calm model's second calculation may come later than the alerts.)
    calculations = f'drift_monitor_calculations_total{{model="{CALM}"}}'
    poll_until(
        lambda: float(_query(stack, calculations)[0]["value"][1]) >= 2,
        timeout=DEADLINE,
        message=f"{CALM} calculated at least twice",
    )
    for metric in ("drift_monitor_dataset_drift", "drift_monitor_column_drift_detected"):
        series = _query(stack, f'max_over_time({metric}{{model="{CALM}"}}[5m])')
        assert len(series) == (1 if metric == "drift_monitor_dataset_drift" else len(FEATURES) + 2)
        assert {s["value"][1] for s in series} == {"0"}, series


def test_quality_alert_fires_on_a_real_drop_and_stays_quiet_on_noise(stack: Stack) -> None:
    def degraded_mae(notification: Notification) -> bool:
        return _firing("DriftMonitorModelQualityDrop", DEGRADED)(notification) and any(
            a["labels"]["metric"] == "mae" for a in notification["alerts"]
        )

    try:
        note = stack.webhook.wait_for(degraded_mae, timeout=DEADLINE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_describe(stack)}") from None
    [alert] = [a for a in note["alerts"] if a["labels"]["metric"] == "mae"]
    assert alert["labels"] == {
        "alertname": "DriftMonitorModelQualityDrop",
        "model": DEGRADED,
        "metric": "mae",
        "severity": "critical",
        "job": MONITOR_JOB,
        "instance": stack.instance,
    }
    annotations = alert["annotations"]
    assert annotations["summary"] == f"Quality of model {DEGRADED} dropped (mae)"
    assert annotations["runbook"] == "docs/runbook.md#model-quality-drop"
    shortfall = float(annotations["value"].removesuffix(" worse than the baseline"))
    # The description quotes the monitor's own numbers (the templates query them).
    numbers = re.fullmatch(
        rf"The mae of model {DEGRADED} on its labelled rows is (\S+), and its whole 95% interval "
        r"\((\S+) to (\S+)\) is worse than its baseline (\S+) by (\S+), for more than 30 minutes\.",
        annotations["description"],
    )
    assert numbers, annotations["description"]
    value, lower, upper, baseline = (float(numbers[i]) for i in range(1, 5))
    assert baseline < lower < value < upper
    assert shortfall == pytest.approx(lower - baseline, rel=1e-3)
    # The window's errors are those of prices 1.3 times higher: far above the reference's MAE.
    assert value > 1.4 * baseline

    # Noise: calm (regression) and expensive (classification) see the reference's own population.
    # Both have every metric with an interval and a baseline, and no interval ever excluded it.
    for model, metrics in ((CALM, 4), (EXPENSIVE, 5)):
        shortfall = f'model_metric:drift_monitor_model_quality:shortfall_vs_baseline{{model="{model}"}}'
        series = _query(stack, f"max_over_time({shortfall}[5m])")
        assert len(series) == metrics, (model, series)
        assert all(float(s["value"][1]) <= 0 for s in series), (model, series)
    alerts = _prom(stack, "alerts")["alerts"]
    quiet = [a["labels"] for a in alerts if a["labels"]["alertname"] == "DriftMonitorModelQualityDrop"]
    assert not [labels for labels in quiet if labels["model"] in (CALM, EXPENSIVE)], quiet


def test_a_model_without_labels_is_skipped_with_its_reason_and_estimated(stack: Stack) -> None:
    asked = {"accuracy", "precision", "recall", "f1", "roc_auc", "class_recall"}

    def skipped() -> set[str] | None:
        series = _query(stack, f'drift_monitor_model_quality_skipped{{model="{UNLABELLED}"}} == 1')
        found = {s["metric"]["metric"] for s in series if s["metric"]["reason"] == "no_labels"}
        return found if found == asked else None

    poll_until(skipped, timeout=DEADLINE, message="quality of unlabelled skipped with no_labels")
    assert not _query(stack, f'drift_monitor_model_quality{{model="{UNLABELLED}"}}')
    estimated = _query(stack, f'drift_monitor_model_quality_estimated{{model="{UNLABELLED}"}}')
    assert {s["metric"]["metric"] for s in estimated} == asked - {"class_recall"}
    # The same rows as `expensive`, whose labels did arrive: the same estimate (same rows, same
    # reference), close to what the labels show there.
    for series in estimated:
        metric = series["metric"]["metric"]
        value = float(series["value"][1])
        [twin] = _query(
            stack, f'drift_monitor_model_quality_estimated{{model="{EXPENSIVE}", metric="{metric}"}}'
        )
        assert float(twin["value"][1]) == pytest.approx(value), metric
        [realised] = _query(stack, f'drift_monitor_model_quality{{model="{EXPENSIVE}", metric="{metric}"}}')
        assert abs(float(realised["value"][1]) - value) < 0.05, metric


def test_every_dashboard_query_returns_data_from_the_real_monitor(stack: Stack) -> None:
    # The labels posted for `shifted` were joined and used: model quality is computed on them.
    poll_until(
        lambda: _query(stack, f'drift_monitor_labelled_rows{{model="{SHIFTED}"}} == {ROWS}'),
        timeout=DEADLINE,
        message=f"{ROWS} labelled rows of {SHIFTED} in a calculation",
        on_timeout=lambda: _describe(stack),
    )
    assert _query(stack, f'drift_monitor_model_quality{{model="{SHIFTED}", metric="mae"}}')
    assert _query(stack, f'drift_monitor_model_quality{{model="{EXPENSIVE}", metric="roc_auc"}}')
    # The rows were scraped arriving (the stack fixture waits for a first scrape before posting).
    rates = _query(stack, "model:drift_monitor_rows_ingested:rate5m > 0")
    assert {series["metric"]["model"] for series in rates} == set(MODELS), rates

    # As Grafana substitutes "All" of a multi-value variable: a regex alternation of every value.
    variables = {
        "model": f"({'|'.join(MODELS)})",
        "column": f"({'|'.join((*FEATURES, 'price', 'prediction', 'expensive', 'prob_expensive'))})",
    }
    queries, allowed = [], []
    for query in all_dashboard_queries():
        expanded = Query(query.where, substitute_grafana_variables(query.expr, variables))
        is_allowed = any(marker in query.expr for marker in NO_DATA_EXPECTED)
        (allowed if is_allowed else queries).append(expanded)
    assert len(queries) > 40
    # every allow-list entry still names a query (a stale entry would hide nothing and mislead)
    assert {m for m in NO_DATA_EXPECTED if any(m in q.expr for q in allowed)} == NO_DATA_EXPECTED.keys()

    def empty() -> list[str]:
        return [query.where for query in queries if not _query(stack, query.expr)]

    poll_until(
        lambda: not empty(),
        timeout=DEADLINE,
        message="every dashboard query to return data",
        on_timeout=lambda: "empty: " + "\n".join(empty()),
    )


def test_monitor_down_is_notified_and_inhibits_its_drift_alerts(stack: Stack) -> None:
    """Runs last: stops the monitor (SIGTERM to its PID).

    The drift alerts stay active after the stop only thanks to the copy's keep_firing_for (see
    write_short_alert_rules): with the repository's rules they resolve at the first failed scrape,
    and Alertmanager notifies them as resolved before DriftMonitorDown fires.
    """
    _dataset_drift_notification(stack)
    drift_matchers = (f'instance="{stack.instance}"', f'alertname=~"{"|".join(_drift_alertnames())}"')
    before = poll_until(
        lambda: [a for a in _am_alerts(stack, *drift_matchers) if a["labels"]["model"] == SHIFTED],
        timeout=DEADLINE,
        message="drift alerts of shifted in Alertmanager",
    )
    assert {a["labels"]["alertname"] for a in before} >= {
        "DriftMonitorDatasetDrift",
        "DriftMonitorFeatureDrift",
    }

    assert stack.monitor.stop(timeout=20) == 0, stack.monitor.log_tail()
    down = stack.webhook.wait_for(_firing("DriftMonitorDown"), timeout=DEADLINE)
    [alert] = down["alerts"]
    assert alert["labels"] == {
        "alertname": "DriftMonitorDown",
        "severity": "critical",
        "job": MONITOR_JOB,
        "instance": stack.instance,
    }
    annotations = alert["annotations"]
    assert annotations["summary"] == f"Drift monitor {stack.instance} is down"
    assert f"drift monitor at {stack.instance}" in annotations["description"]
    assert f"(job {MONITOR_JOB})" in annotations["description"]
    assert annotations["runbook"] == "docs/runbook.md#monitor-down"
    first_down = stack.webhook.notifications.index(down)
    drift_alertnames = set(_drift_alertnames())

    # Every drift alert of this monitor still active in Alertmanager is inhibited by Down.
    [down_alert] = _am_alerts(stack, 'alertname="DriftMonitorDown"', f'instance="{stack.instance}"')

    def inhibited() -> list[dict[str, Any]] | None:
        alerts = _am_alerts(stack, *drift_matchers)
        done = all(down_alert["fingerprint"] in a["status"]["inhibitedBy"] for a in alerts)
        return alerts if alerts and done else None

    alerts = poll_until(
        inhibited,
        timeout=DEADLINE,
        message="drift alerts inhibited by DriftMonitorDown",
        on_timeout=lambda: str([(a["labels"], a["status"]) for a in _am_alerts(stack, *drift_matchers)]),
    )
    assert {(a["labels"]["alertname"], a["labels"]["model"]) for a in alerts} >= {
        ("DriftMonitorDatasetDrift", SHIFTED),
        ("DriftMonitorFeatureDrift", SHIFTED),
        ("DriftMonitorFeatureDrift", PARTIAL),
    }
    assert all(a["status"]["state"] == "suppressed" for a in alerts)

    # Down is notified again after repeat_interval (2 s); a drift group that was not muted would
    # have been notified again in the same time. None was.
    stack.webhook.wait_for(lambda n: _firing("DriftMonitorDown")(n) and n is not down, timeout=DEADLINE)
    after = [
        (n["status"], n["groupLabels"])
        for n in stack.webhook.notifications[first_down + 1 :]
        if n["groupLabels"]["alertname"] in drift_alertnames
        and any(a["labels"].get("instance") == stack.instance for a in n["alerts"])
    ]
    assert not after, after
