"""Authentication is on: no credentials, no access; nkeys work; passwords never reach logs or reprs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml

from monitor_service.config import ClusterConfig, parse_config
from monitor_service.errors import ConfigError
from monitor_service.journal.jetstream import ClusterUnavailable, JetStreamCluster
from tests.cluster.conftest import make_config, run
from tests.cluster.test_journal import MODEL, rows_body
from tests.conftest import diamonds_model
from tests.support.nats import NatsCluster

pytestmark = pytest.mark.integration


def test_clients_without_valid_credentials_are_refused(cluster: NatsCluster) -> None:
    anonymous = ClusterConfig(servers=cluster.urls, connect_timeout=2.0)
    wrong = make_config(cluster, password="not-the-password", connect_timeout=2.0)

    async def scenario() -> list[str]:
        messages = []
        for config in (anonymous, wrong):
            with pytest.raises(ClusterUnavailable) as caught:
                await JetStreamCluster.connect(config)
            messages.append(caught.value.detail + " " + str(caught.value))
        return messages

    for message in run(scenario()):
        assert "Authorization Violation" in message
        assert "not-the-password" not in message


def test_nkey_login(cluster: NatsCluster, nkey_seed_file: Path) -> None:
    config = make_config(cluster, user=None, password=None, nkeys_seed_file=nkey_seed_file)

    async def scenario() -> int:
        journal = await JetStreamCluster.connect(config)
        try:
            await journal.ensure_model(MODEL, max_rows=10, max_age=None)
            return (await journal.publish(MODEL, "rows", rows_body(0, 1), msg_id="nk", rows=1)).seq
        finally:
            await journal.close()

    assert run(scenario()) == 1


def test_credentials_never_appear_in_logs_or_reprs(
    cluster: NatsCluster, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Connect, publish, lose the node we are connected to (reconnect), fail a login, and load a
    bad config: the password is in none of the log records, outputs, reprs or error texts."""
    caplog.set_level(logging.DEBUG)
    first = cluster.nodes[0]
    config = make_config(cluster, servers=[first.url], publish_timeout=20.0)  # rides through an election
    wrong = make_config(cluster, password=cluster.password + "x", connect_timeout=1.0)
    texts: list[str] = [repr(config), str(config), config.model_dump_json(), repr(wrong)]

    async def scenario() -> int:
        journal = await JetStreamCluster.connect(config)
        try:
            await journal.ensure_model(MODEL, max_rows=10, max_age=None)
            await journal.publish(MODEL, "rows", rows_body(0, 1), msg_id="a", rows=1)
            await asyncio.to_thread(first.kill)  # the client reconnects to a node it discovered
            await journal.publish(MODEL, "rows", rows_body(1, 1), msg_id="b", rows=1)
            texts.append(repr(journal))
            reconnects = journal.stats.reconnects
        finally:
            await journal.close()
        with pytest.raises(ClusterUnavailable) as caught:
            await JetStreamCluster.connect(wrong)
        texts.append(str(caught.value))
        return reconnects

    try:
        assert run(scenario()) == 1
    finally:
        first.start()
    bad = yaml.safe_dump(
        {
            "models": [diamonds_model()],
            "cluster": {"servers": cluster.urls, "user": "u", "password": cluster.password, "replicas": 4},
        }
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(bad, "bad.yaml", tmp_path, environ={})
    texts.append(str(caught.value))
    captured = capfd.readouterr()
    assert "reconnected to NATS" in caplog.text
    for text in [*texts, caplog.text, captured.out, captured.err]:
        assert cluster.password not in text
        assert cluster.route_password not in text
