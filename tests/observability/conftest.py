"""Fixtures for the observability tests: a webhook receiver, a real Alertmanager, a stand-in monitor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.observability.fake_monitor import FakeMonitor
from tests.support.processes import (
    RunningProcess,
    free_port,
    render_alertmanager_config,
    start_alertmanager,
)
from tests.support.webhook import WebhookReceiver


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookReceiver
) -> Iterator[RunningProcess]:
    """prometheus-alertmanager with rules/alertmanager.yml, its webhook pointed at ``webhook``."""
    tmp = tmp_path_factory.mktemp("alertmanager")
    config = tmp / "alertmanager.yml"
    config.write_text(render_alertmanager_config(webhook.url))
    process = start_alertmanager(config, tmp / "data", free_port(), log_path=tmp / "alertmanager.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def fake_monitor() -> Iterator[FakeMonitor]:
    """A stand-in for the monitor's /metrics (every documented metric) on a loopback port."""
    with FakeMonitor() as monitor:
        yield monitor
