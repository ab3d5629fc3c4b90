"""scripts/local_stack.py: Prometheus and Alertmanager from the system binaries, stopped on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.observability.fake_monitor import FakeMonitor
from tests.support.processes import REPO_ROOT, free_port, http_get, poll_until, start_process, wait_for_http
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.integration

SCRIPT = REPO_ROOT / "scripts" / "local_stack.py"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_local_stack_scrapes_given_targets_and_stops_on_ctrl_c(
    tmp_path: Path, fake_monitor: FakeMonitor, webhook: WebhookReceiver
) -> None:
    prometheus_port, alertmanager_port = free_port(), free_port()
    model_service = f"127.0.0.1:{free_port()}"  # nothing listens: that target is simply down
    stack = start_process(
        "local_stack",
        [
            sys.executable,
            str(SCRIPT),
            "--monitor",
            fake_monitor.target,
            "--model-service",
            model_service,
            "--prometheus-port",
            str(prometheus_port),
            "--alertmanager-port",
            str(alertmanager_port),
            "--webhook-url",
            webhook.url,
            "--scrape-interval",
            "1s",
            "--data-dir",
            str(tmp_path / "stack"),
        ],
        tmp_path / "local_stack.log",
    )
    try:
        wait_for_http(f"http://127.0.0.1:{alertmanager_port}/-/ready", process=stack, timeout=30)
        wait_for_http(f"http://127.0.0.1:{prometheus_port}/-/ready", process=stack, timeout=30)

        def monitor_target_up() -> dict[str, object] | None:
            status, body = http_get(f"http://127.0.0.1:{prometheus_port}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
            return next(
                (t for t in targets if t["labels"]["job"] == "drift-monitor" and t["health"] == "up"), None
            )

        target = poll_until(monitor_target_up, timeout=30, message="the drift-monitor target to be up")
        assert target["scrapeUrl"] == f"http://{fake_monitor.target}/metrics"
        poll_until(
            lambda: f"http://127.0.0.1:{prometheus_port}" in stack.log(),
            timeout=10,
            message="the printed URLs",
        )
        assert f"http://127.0.0.1:{alertmanager_port}" in stack.log()
    finally:
        exit_code = stack.stop(signal.SIGINT, timeout=30)
    assert exit_code == 0, stack.log()
    assert "stopped prometheus" in stack.log()
    assert "stopped alertmanager" in stack.log()
    assert not _listening(prometheus_port)
    assert not _listening(alertmanager_port)
