"""rules/alertmanager.yml and its templates: amtool's checks, and the real binary's behaviour."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import REPO_ROOT, RunningProcess, amtool_binary, http_get, poll_until, run_tool
from tests.support.webhook import Notification, WebhookReceiver

AM_CONFIG = REPO_ROOT / "rules" / "alertmanager.yml"
TEMPLATES = REPO_ROOT / "rules" / "templates"
DEADLINE = 20.0  # seconds; with group_wait 1s a notification normally takes 1-2 s


def _alert(alertname: str, severity: str, instance: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": alertname,
            "severity": severity,
            "job": "drift-monitor",
            "instance": instance,
            **labels,
        },
        "annotations": {
            "summary": f"{alertname} test",
            "description": "posted by tests/observability/test_alertmanager.py",
            "runbook": "docs/runbook.md#dataset-drift",
        },
        "startsAt": datetime.now(UTC).isoformat(),
        "generatorURL": "http://127.0.0.1/test",
    }


def _post_alerts(alertmanager: RunningProcess, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        alertmanager.base_url + "/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _get_alerts(alertmanager: RunningProcess, *matchers: str, **params: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode([("filter", matcher) for matcher in matchers] + list(params.items()))
    status, body = http_get(f"{alertmanager.base_url}/api/v2/alerts?{query}")
    assert status == 200, body
    alerts: list[dict[str, Any]] = json.loads(body)
    return alerts


def _group(alertname: str, model: str) -> Any:
    """Matches the notification of the group (alertname, model); model "" = alerts without a model."""
    expected = {"alertname": alertname, "model": model} if model else {"alertname": alertname}

    def match(notification: Notification) -> bool:
        return bool(notification["groupLabels"] == expected)

    return match


def _render(template: str, data: Path) -> str:
    return run_tool(
        [
            amtool_binary(),
            "template",
            "render",
            f"--template.glob={TEMPLATES}/*.tmpl",
            f'--template.text={{{{ template "{template}" . }}}}',
            f"--template.data={data}",
        ]
    )


# ------------------------------------------------------------------------------------- offline


def test_alertmanager_config_passes_amtool_check() -> None:
    output = run_tool([amtool_binary(), "check-config", str(AM_CONFIG)])
    assert "SUCCESS" in output
    assert "3 inhibit rules" in output


def test_alertmanager_routes_inhibit_only_alerts_nowhere() -> None:
    output = run_tool(
        [
            amtool_binary(),
            "config",
            "routes",
            "test",
            f"--config.file={AM_CONFIG}",
            "severity=info",
            "alertname=DriftMonitorManyColumnsDrifted",
            "inhibit_only=true",
            "model=churn",
        ]
    )
    assert output.splitlines()[-1].strip() == "inhibit-only"
    config = yaml.safe_load(AM_CONFIG.read_text())
    [receiver] = [r for r in config["receivers"] if r["name"] == "inhibit-only"]
    assert set(receiver) == {"name"}  # no notification configs at all


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
def test_alertmanager_routes_every_severity_to_default_webhook(severity: str) -> None:
    output = run_tool(
        [
            amtool_binary(),
            "config",
            "routes",
            "test",
            f"--config.file={AM_CONFIG}",
            f"severity={severity}",
            "alertname=DriftMonitorDatasetDrift",
            "model=churn",
        ]
    )
    assert output.splitlines()[-1].strip() == "default-webhook"


def test_alertmanager_config_groups_by_alertname_and_model_and_inhibits_on_job_instance() -> None:
    config = yaml.safe_load(AM_CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "model"]
    assert config["route"]["receiver"] == "default-webhook"
    down = next(
        rule
        for rule in config["inhibit_rules"]
        if 'alertname=~"DriftMonitorDown|DriftMonitorMemberDown"' in rule["source_matchers"]
    )
    assert down["equal"] == ["job", "cluster", "instance"]
    # Slack and e-mail are written out but not routed by default (docs/alerting.md).
    receivers = {receiver["name"] for receiver in config["receivers"]}
    assert {"default-webhook", "slack-drift", "email-ml-oncall", "inhibit-only"} == receivers
    routed = {config["route"]["receiver"], *(route["receiver"] for route in config["route"]["routes"])}
    assert routed == {"default-webhook", "inhibit-only"}
    # The per-column drift alerts are muted by the many-columns alert, never by the dataset alert:
    # a dataset drift caused by one column must not hide that column's alert.
    column = [
        r for r in config["inhibit_rules"] if 'alertname="DriftMonitorFeatureDrift"' in r["target_matchers"]
    ]
    assert [r["source_matchers"] for r in column] == [['alertname="DriftMonitorManyColumnsDrifted"']]
    assert column[0]["equal"] == ["job", "cluster", "instance", "model"]


@pytest.mark.parametrize(
    "template",
    [
        "drift_monitor.slack.text",
        "drift_monitor.email.text",
        "drift_monitor.email.html",
    ],
)
def test_notification_templates_show_model_column_and_value(template: str, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    alert = _alert(
        "DriftMonitorFeatureDrift", "info", "monitor:8000", model="churn", column="age", role="feature"
    )
    alert["annotations"]["value"] = "0.0123"
    alert["status"] = "firing"
    data.write_text(
        json.dumps(
            {
                "receiver": "slack-drift",
                "status": "firing",
                "alerts": [alert],
                "groupLabels": {"alertname": "DriftMonitorFeatureDrift", "model": "churn"},
                "commonLabels": alert["labels"],
                "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093",
            }
        )
    )
    rendered = _render(template, data)
    for expected in ("churn", "age", "0.0123", "docs/runbook.md#dataset-drift"):
        assert expected in rendered, f"{template} does not show {expected!r}:\n{rendered}"


def test_notification_titles_name_alert_model_and_count(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    alert = _alert("DriftMonitorDatasetDrift", "warning", "monitor:8000", model="churn")
    data.write_text(
        json.dumps(
            {
                "status": "firing",
                "alerts": [{**alert, "status": "firing"}],
                "groupLabels": {},
                "commonLabels": alert["labels"],
                "commonAnnotations": {},
                "externalURL": "",
            }
        )
    )
    for template in ("drift_monitor.slack.title", "drift_monitor.email.subject"):
        assert _render(template, data) == "[FIRING:1] DriftMonitorDatasetDrift · model churn (warning)"


# ------------------------------------------------------------------------------ the real binary


@pytest.mark.integration
def test_alertmanager_delivers_drift_alert_to_webhook(
    alertmanager: RunningProcess, webhook: WebhookReceiver
) -> None:
    alert = _alert("DriftMonitorDatasetDrift", "warning", "monitor:8000", model="delivered")
    _post_alerts(alertmanager, [alert])

    notification = webhook.wait_for(_group("DriftMonitorDatasetDrift", "delivered"), timeout=DEADLINE)

    assert notification["receiver"] == "default-webhook"
    assert notification["status"] == "firing"
    [received] = notification["alerts"]
    assert received["labels"] == alert["labels"]
    assert received["annotations"] == alert["annotations"]


@pytest.mark.integration
def test_alertmanager_inhibits_drift_alerts_of_a_monitor_that_is_down(
    alertmanager: RunningProcess, webhook: WebhookReceiver
) -> None:
    down = _alert("DriftMonitorDown", "critical", "monitor-a:8000")
    _post_alerts(alertmanager, [down])
    poll_until(
        lambda: _get_alerts(alertmanager, 'alertname="DriftMonitorDown"', 'instance="monitor-a:8000"'),
        timeout=DEADLINE,
        message="Alertmanager to list DriftMonitorDown",
    )
    # Same alertname and model, so the same notification group: the alert of the monitor that is down
    # must be left out of it, the one of the healthy monitor must not.
    muted = _alert("DriftMonitorDatasetDrift", "warning", "monitor-a:8000", model="inhibited")
    healthy = _alert("DriftMonitorDatasetDrift", "warning", "monitor-b:8000", model="inhibited")
    _post_alerts(alertmanager, [muted, healthy])

    down_note = webhook.wait_for(_group("DriftMonitorDown", ""), timeout=DEADLINE)
    assert [a["labels"]["instance"] for a in down_note["alerts"]] == ["monitor-a:8000"]
    drift_note = webhook.wait_for(_group("DriftMonitorDatasetDrift", "inhibited"), timeout=DEADLINE)
    assert [a["labels"]["instance"] for a in drift_note["alerts"]] == ["monitor-b:8000"]

    [state] = _get_alerts(alertmanager, 'alertname="DriftMonitorDatasetDrift"', 'instance="monitor-a:8000"')
    assert state["status"]["state"] == "suppressed"
    assert state["status"]["inhibitedBy"], state["status"]
    assert not _get_alerts(
        alertmanager, 'alertname="DriftMonitorDatasetDrift"', 'instance="monitor-a:8000"', inhibited="false"
    )
    delivered = [
        alert["labels"].get("instance")
        for note in webhook.notifications
        for alert in note["alerts"]
        if alert["labels"].get("model") == "inhibited"
    ]
    assert "monitor-a:8000" not in delivered


def _state(alertmanager: RunningProcess, *matchers: str) -> str:
    [alert] = _get_alerts(alertmanager, *matchers)
    return str(alert["status"]["state"])


@pytest.mark.integration
def test_alertmanager_mutes_exactly_what_a_lost_member_or_cluster_takes_with_it(
    alertmanager: RunningProcess,
) -> None:
    """Cluster mode: a member that is down mutes its own alerts, not the cluster's drift alerts
    (the other members still serve them); the whole cluster down mutes every alert of that cluster
    and nothing of another cluster or of a single node."""

    def cluster_alert(alertname: str, severity: str, cluster: str, **labels: str) -> dict[str, Any]:
        alert = _alert(alertname, severity, "", cluster=cluster, **labels)
        del alert["labels"]["instance"]  # the rules aggregate the members' series over instance
        return alert

    member_down = _alert("DriftMonitorMemberDown", "warning", "m1:8000", cluster="c9")
    _post_alerts(alertmanager, [member_down])
    poll_until(
        lambda: _get_alerts(alertmanager, 'alertname="DriftMonitorMemberDown"', 'cluster="c9"'),
        timeout=DEADLINE,
        message="Alertmanager to list DriftMonitorMemberDown",
    )
    _post_alerts(
        alertmanager,
        [
            _alert("DriftMonitorHighMemory", "warning", "m1:8000", cluster="c9"),
            _alert("DriftMonitorHighMemory", "warning", "m2:8000", cluster="c9"),
            cluster_alert("DriftMonitorDatasetDrift", "warning", "c9", model="churn9"),
            cluster_alert("DriftMonitorDatasetDrift", "warning", "c8", model="churn8"),
            _alert("DriftMonitorDatasetDrift", "warning", "solo:8000", model="solo9"),
        ],
    )

    def states() -> dict[str, str]:
        return {
            "m1 memory": _state(alertmanager, 'alertname="DriftMonitorHighMemory"', 'instance="m1:8000"'),
            "m2 memory": _state(alertmanager, 'alertname="DriftMonitorHighMemory"', 'instance="m2:8000"'),
            "c9 drift": _state(alertmanager, 'alertname="DriftMonitorDatasetDrift"', 'model="churn9"'),
            "c8 drift": _state(alertmanager, 'alertname="DriftMonitorDatasetDrift"', 'model="churn8"'),
            "solo drift": _state(alertmanager, 'alertname="DriftMonitorDatasetDrift"', 'model="solo9"'),
        }

    member_lost = poll_until(
        lambda: (found := states())["m1 memory"] == "suppressed" and found,
        timeout=DEADLINE,
        message="the lost member's own alert to be muted",
    )
    assert member_lost == {
        "m1 memory": "suppressed",
        "m2 memory": "active",
        "c9 drift": "active",
        "c8 drift": "active",
        "solo drift": "active",
    }

    _post_alerts(alertmanager, [cluster_alert("DriftMonitorClusterDown", "critical", "c9")])
    cluster_lost = poll_until(
        lambda: (found := states())["c9 drift"] == "suppressed" and found,
        timeout=DEADLINE,
        message="the lost cluster's alerts to be muted",
    )
    assert cluster_lost == {
        "m1 memory": "suppressed",
        "m2 memory": "suppressed",
        "c9 drift": "suppressed",
        "c8 drift": "active",
        "solo drift": "active",
    }
    assert _state(alertmanager, 'alertname="DriftMonitorMemberDown"', 'cluster="c9"') == "suppressed"


@pytest.mark.integration
def test_alertmanager_mutes_column_alerts_only_when_many_columns_drifted(
    alertmanager: RunningProcess, webhook: WebhookReceiver
) -> None:
    """Model `narrow`: dataset drift caused by one column, whose alert is notified. Model `wide`:
    many columns drifted, the inhibit-only alert mutes its column alerts and is itself never sent."""
    alerts = [
        _alert("DriftMonitorDatasetDrift", "warning", "monitor:8000", model="narrow"),
        _alert(
            "DriftMonitorFeatureDrift", "info", "monitor:8000", model="narrow", column="age", role="feature"
        ),
        _alert("DriftMonitorDatasetDrift", "warning", "monitor:8000", model="wide"),
        _alert("DriftMonitorManyColumnsDrifted", "info", "monitor:8000", model="wide", inhibit_only="true"),
    ]
    _post_alerts(alertmanager, alerts)
    poll_until(
        lambda: _get_alerts(alertmanager, 'alertname="DriftMonitorManyColumnsDrifted"', 'model="wide"'),
        timeout=DEADLINE,
        message="Alertmanager to list DriftMonitorManyColumnsDrifted",
    )
    wide_columns = [
        _alert("DriftMonitorFeatureDrift", "info", "monitor:8000", model="wide", column=c, role="feature")
        for c in ("carat", "x", "y")
    ]
    _post_alerts(alertmanager, wide_columns)

    narrow = webhook.wait_for(_group("DriftMonitorFeatureDrift", "narrow"), timeout=DEADLINE)
    assert [a["labels"]["column"] for a in narrow["alerts"]] == ["age"]
    webhook.wait_for(_group("DriftMonitorDatasetDrift", "wide"), timeout=DEADLINE)

    def wide_suppressed() -> list[dict[str, Any]] | None:
        states = _get_alerts(alertmanager, 'alertname="DriftMonitorFeatureDrift"', 'model="wide"')
        done = len(states) == 3 and all(a["status"]["state"] == "suppressed" for a in states)
        return states if done else None

    poll_until(wide_suppressed, timeout=DEADLINE, message="the wide model's column alerts muted")
    sent = {
        (a["labels"]["alertname"], a["labels"].get("model"))
        for n in webhook.notifications
        for a in n["alerts"]
    }
    assert ("DriftMonitorFeatureDrift", "wide") not in sent
    assert ("DriftMonitorManyColumnsDrifted", "wide") not in sent
