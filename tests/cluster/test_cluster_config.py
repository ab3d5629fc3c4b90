"""The `cluster:` section: what it accepts, what it refuses (with the key at fault), and secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor_service.config import MonitorConfig, config_warnings, parse_config
from monitor_service.errors import ConfigError
from tests.conftest import diamonds_model

SECRET = "s3cr3t-Pa55w0rd-never-shown"


def config_text(cluster: dict[str, Any], **model: Any) -> str:
    return str(yaml.safe_dump({"models": [diamonds_model(**model)], "cluster": cluster}))


def load(text: str, base: Path, environ: dict[str, str] | None = None) -> MonitorConfig:
    return parse_config(text, "monitor.yaml", base, environ=environ or {})


def problems(text: str, base: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, base, environ)
    assert SECRET not in str(caught.value)
    return caught.value.problems


def test_cluster_section_is_optional(tmp_path: Path) -> None:
    config = load(yaml.safe_dump({"models": [diamonds_model()]}), tmp_path)
    assert config.cluster is None


def test_password_from_the_environment_is_never_shown(tmp_path: Path) -> None:
    text = config_text({"servers": ["nats://n1:4222", "tls://n2:4222"], "user": "monitor"})
    config = load(text, tmp_path, {"DRIFT_MONITOR_NATS_PASSWORD": SECRET})
    cluster = config.cluster
    assert cluster is not None and cluster.password is not None
    assert cluster.password.get_secret_value() == SECRET
    for shown in (
        repr(config),
        str(config),
        repr(cluster),
        str(cluster),
        cluster.model_dump_json(),
        str(cluster.model_dump()),
    ):
        assert SECRET not in shown
    assert (cluster.replicas, cluster.stream_prefix, cluster.publish_timeout, cluster.duplicate_window) == (
        3,
        "DM",
        10.0,
        120.0,
    )


def test_servers_and_user_from_the_environment(tmp_path: Path) -> None:
    text = config_text({"servers": ["nats://ignored:4222"], "password": SECRET, "user": "x"})
    environ = {"DRIFT_MONITOR_NATS_SERVERS": "nats://a:4222, nats://b:4223", "DRIFT_MONITOR_NATS_USER": "y"}
    cluster = load(text, tmp_path, environ).cluster
    assert cluster is not None
    assert (cluster.servers, cluster.user) == (["nats://a:4222", "nats://b:4223"], "y")


def test_the_environment_alone_does_not_switch_cluster_mode_on(tmp_path: Path) -> None:
    environ = {"DRIFT_MONITOR_NATS_SERVERS": "nats://a:4222", "DRIFT_MONITOR_NATS_PASSWORD": SECRET}
    assert load(yaml.safe_dump({"models": [diamonds_model()]}), tmp_path, environ).cluster is None


def test_credential_files_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    for name in ("password", "ca.pem", "client.pem", "client.key"):
        (tmp_path / "secrets" / name).write_text("x")
    text = config_text(
        {
            "servers": ["tls://nats:4222"],
            "user": "monitor",
            "password_file": "secrets/password",
            "tls": {
                "ca_file": "secrets/ca.pem",
                "cert_file": "secrets/client.pem",
                "key_file": "secrets/client.key",
            },
        }
    )
    cluster = load(text, tmp_path).cluster
    assert cluster is not None and cluster.tls is not None
    assert cluster.password_file == tmp_path / "secrets" / "password"
    assert cluster.tls.key_file == tmp_path / "secrets" / "client.key"


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ({"servers": []}, "cluster.servers (line 2): List should have at least 1 item"),
        ({"servers": [f"nats://monitor:{SECRET}@n1:4222"]}, "not in a server URL"),
        ({"servers": ["http://n1:8222"]}, "use nats://host:port or tls://host:port"),
        ({"servers": ["nats://n1:4222/path"]}, "nothing more"),
        ({"servers": ["nats://n1:4222", "nats://n1:4222"]}, "listed twice"),
        (
            {"servers": ["nats://n1:4222"], "user": "monitor"},
            "user and password (or password_file) go together",
        ),
        (
            {"servers": ["nats://n1:4222"], "password": SECRET},
            "user and password (or password_file) go together",
        ),
        (
            {"servers": ["nats://n1:4222"], "user": "u", "password": SECRET, "creds_file": "x.creds"},
            "log in one way",
        ),
        ({"servers": ["nats://n1:4222"], "replicas": 2}, "cluster.replicas"),
        (
            {"servers": ["nats://n1:4222"], "publish_timeout": "1m", "duplicate_window": "30s"},
            "duplicate_window",
        ),
        ({"servers": ["nats://n1:4222"], "stream_prefix": "a.b"}, "cluster.stream_prefix"),
        (
            {"servers": ["nats://n1:4222"], "tls": {"cert_file": "c.pem"}},
            "cert_file and key_file go together",
        ),
        (
            {"servers": ["nats://n1:4222"], "nkeys_seed_file": "missing.nk"},
            "cluster.nkeys_seed_file: cannot read",
        ),
        ({"servers": ["nats://n1:4222"], "retries": 3}, "cluster.retries (line"),
    ],
)
def test_nonsense_is_refused_with_the_key_at_fault(
    cluster: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    found = problems(config_text(cluster), tmp_path)
    assert any(expected in problem for problem in found), found


def test_stream_age_must_cover_every_window(tmp_path: Path) -> None:
    text = config_text(
        {"servers": ["nats://n1:4222"], "retention": {"max_age": "1h"}},
        window={"max_rows": 100, "max_age": "50m"},
        labels={"pending_ttl": "20m"},
    )
    [problem] = problems(text, tmp_path)
    assert "cluster.retention.max_age (3600 s) is shorter than" in problem and "diamonds (4200 s)" in problem


def test_stream_limits_derive_from_the_window(tmp_path: Path) -> None:
    text = config_text(
        {"servers": ["nats://n1:4222"]},
        window={"max_rows": 100, "max_age": "1h"},
        labels={"pending_ttl": "10m"},
    )
    config = load(text, tmp_path)
    assert config.cluster is not None
    model = config.models[0]
    assert config.cluster.stream_max_age(model) == 3600 + 600 + 60
    assert config.cluster.window_max_age(model) == 3600
    capped = config.cluster.model_copy(
        update={"retention": config.cluster.retention.model_copy(update={"max_age": 7200.0})}
    )
    assert capped.stream_max_age(model) == 7200
    unbounded = model.model_copy(update={"window": model.window.model_copy(update={"max_age": None})})
    assert config.cluster.stream_max_age(unbounded) is None
    assert capped.window_max_age(unbounded) == 7200


def test_a_local_data_dir_in_cluster_mode_is_said_to_be_unused(tmp_path: Path) -> None:
    raw = yaml.safe_load(config_text({"servers": ["nats://n1:4222"]}))
    raw["storage"] = {"data_dir": "data"}
    warnings = config_warnings(load(yaml.safe_dump(raw), tmp_path))
    assert any("storage.data_dir is not used in cluster mode" in warning for warning in warnings)
    single = yaml.safe_load(config_text({"servers": ["nats://n1:4222"]}))
    del single["cluster"]
    single["storage"] = {"data_dir": "data"}
    assert not any(
        "cluster" in warning for warning in config_warnings(load(yaml.safe_dump(single), tmp_path))
    )


def test_cluster_mode_takes_reports_and_server_exporters_and_refuses_one_members_disk(
    tmp_path: Path,
) -> None:
    raw: dict[str, Any] = {
        "models": [diamonds_model()],
        "cluster": {"servers": ["nats://n1:4222"]},
        "reports": {"every": 5},
        "exporters": {
            "mlflow": {"tracking_uri": "http://127.0.0.1:5000"},
            "evidently_ui": {"url": "http://127.0.0.1:8001"},
        },
    }
    config = load(yaml.safe_dump(raw), tmp_path)
    assert config.reports.every == 5 and config.exporters.mlflow is not None
    raw["exporters"] = {
        "mlflow": {"tracking_uri": str(tmp_path / "mlruns")},
        "evidently_ui": {"workspace": str(tmp_path / "workspace")},
    }
    found = problems(yaml.safe_dump(raw), tmp_path)
    assert any(p.startswith("exporters.mlflow.tracking_uri (line") and "http(s)://" in p for p in found), (
        found
    )
    assert any(p.startswith("exporters.evidently_ui.workspace (line") and "Use url" in p for p in found), (
        found
    )
    del raw["cluster"]  # one node: a local store is where its reports are
    assert load(yaml.safe_dump(raw), tmp_path).exporters.evidently_ui is not None


def test_default_reports_in_cluster_mode_say_what_they_may_take_from_the_nats_nodes(tmp_path: Path) -> None:
    raw = yaml.safe_load(config_text({"servers": ["nats://n1:4222"], "replicas": 3}))
    warnings = config_warnings(load(yaml.safe_dump(raw), tmp_path))
    assert any(
        w.startswith("reports: stored in the cluster's files bucket") and "3 GiB" in w for w in warnings
    )
    raw["reports"] = {"keep": 288}  # sized: no warning
    assert not any(w.startswith("reports:") for w in config_warnings(load(yaml.safe_dump(raw), tmp_path)))
