"""Real processes for tests, on monitor_service.child_processes: the programs the integration
tests need, the drift monitor itself (``python -m monitor_service serve``), Prometheus and
Alertmanager (Debian's ``prometheus`` and ``prometheus-alertmanager``), plus renderers for a test
Prometheus config (scrapes a monitor every second with the repository's rule files, alerts to a
given Alertmanager) and for the repository's Alertmanager config pointed at a test webhook
(tests/support/webhook.py).

Typical use in a fixture::

    monitor = start_monitor(config_file, free_port(), tmp_path / "monitor.log")  # waits for /readyz
    alertmanager = start_alertmanager(am_config, tmp_path / "am", free_port())
    try:
        yield monitor.base_url, alertmanager.base_url
    finally:
        alertmanager.stop()
        assert monitor.stop() == 0, monitor.log()
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from monitor_service.child_processes import (
    LOOPBACK,
    ProcessError,
    RunningProcess,
    free_port,
    http_get,
    poll_until,
    start_and_wait,
    start_process,
    wait_for_http,
)

__all__ = [
    "LOOPBACK",
    "ProcessError",
    "RunningProcess",
    "free_port",
    "http_get",
    "poll_until",
    "start_process",
    "wait_for_http",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = REPO_ROOT / "rules"
RULE_FILES: tuple[Path, ...] = (
    RULES_DIR / "drift_monitor_recording_rules.yml",
    RULES_DIR / "drift_monitor_alerts.yml",
)
MONITOR_JOB = "drift-monitor"


def find_binary(*names: str, env_var: str | None = None) -> str:
    """Absolute path of the first of ``names`` on PATH (or of ``$env_var`` when set)."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ProcessError(
        f"none of {list(names)} is on PATH; on Debian: apt-get install -y --no-install-recommends "
        "prometheus prometheus-alertmanager"
    )


def prometheus_binary() -> str:
    return find_binary("prometheus", env_var="PROMETHEUS_BIN")


def promtool_binary() -> str:
    return find_binary("promtool", env_var="PROMTOOL_BIN")


def alertmanager_binary() -> str:
    # Debian names it prometheus-alertmanager; upstream tarballs name it alertmanager.
    return find_binary("prometheus-alertmanager", "alertmanager", env_var="ALERTMANAGER_BIN")


def amtool_binary() -> str:
    return find_binary("amtool", env_var="AMTOOL_BIN")


def run_tool(args: Sequence[str], *, timeout: float = 60, cwd: Path = REPO_ROOT) -> str:
    """Run a tool (promtool, amtool, ...) to completion and return its stdout; fail with its
    stdout and stderr unless it exits 0."""
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        # promtool prints a blank line per evaluation step on failure: keep the report readable
        output = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if line.strip())
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{output[-6000:]}")
    return done.stdout.strip()


def start_prometheus(
    config_file: Path,
    data_dir: Path,
    port: int,
    *,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> RunningProcess:
    """Start Prometheus on 127.0.0.1:``port`` and wait for ``/-/ready``."""
    args = [
        prometheus_binary(),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--web.enable-lifecycle",
        *extra_args,
    ]
    return start_and_wait(
        "prometheus",
        args,
        log_path or data_dir.with_name(data_dir.name + "-prometheus.log"),
        f"http://{LOOPBACK}:{port}",
        "/-/ready",
        timeout,
    )


def start_alertmanager(
    config_file: Path,
    storage_dir: Path,
    port: int,
    *,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> RunningProcess:
    """Start Alertmanager on 127.0.0.1:``port`` (clustering off) and wait for ``/-/ready``."""
    args = [
        alertmanager_binary(),
        f"--config.file={config_file}",
        f"--storage.path={storage_dir}",
        f"--web.listen-address={LOOPBACK}:{port}",
        # Empty: no gossip listener (it would bind 0.0.0.0:9094 otherwise).
        "--cluster.listen-address=",
        *extra_args,
    ]
    return start_and_wait(
        "alertmanager",
        args,
        log_path or storage_dir.with_name(storage_dir.name + "-alertmanager.log"),
        f"http://{LOOPBACK}:{port}",
        "/-/ready",
        timeout,
    )


def start_monitor(
    config_file: Path,
    port: int,
    log_path: Path,
    *,
    ready_path: str = "/readyz",
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    timeout: float = 90.0,
) -> RunningProcess:
    """Start ``python -m monitor_service serve --config FILE --host 127.0.0.1 --port N``.

    Waits until ``ready_path`` answers 200 (``/readyz``: references loaded, worker started). The
    returned process has ``base_url`` set (``http://127.0.0.1:<port>``).
    """
    args = [
        python,
        "-m",
        "monitor_service",
        "serve",
        "--config",
        str(config_file),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
    ]
    return start_and_wait(
        "drift-monitor",
        args,
        log_path,
        f"http://{LOOPBACK}:{port}",
        ready_path,
        timeout,
        env=env,
        cwd=REPO_ROOT,
    )


def render_prometheus_config(
    monitor_target: str,
    *,
    alertmanager_target: str | None = None,
    rule_files: Sequence[Path] = RULE_FILES,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    extra_scrape_configs: Sequence[Mapping[str, object]] = (),
) -> str:
    """A Prometheus config (YAML text) for tests: scrape ``monitor_target`` (host:port) as job
    "drift-monitor" every second, evaluate the repository's rules every second (absolute paths, so
    the file can live anywhere) and send alerts to ``alertmanager_target`` when given.

    Note the repository's ``for:`` durations (minutes) still apply: tests that need an alert to
    *fire* through real Prometheus should write their own short-``for`` rule file and pass it in
    ``rule_files``; with the repository's rules they can assert pending alerts and recorded series.
    """
    config: dict[str, object] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": MONITOR_JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [monitor_target]}],
            },
            *[dict(extra) for extra in extra_scrape_configs],
        ],
    }
    if alertmanager_target:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]}
    return yaml.safe_dump(config, sort_keys=False)


def write_prometheus_config(path: Path, monitor_target: str, **kwargs: object) -> Path:
    """Write :func:`render_prometheus_config` to ``path`` and return it."""
    path.write_text(render_prometheus_config(monitor_target, **kwargs))  # type: ignore[arg-type]
    return path


def render_alertmanager_config(
    webhook_url: str,
    *,
    source: Path = RULES_DIR / "alertmanager.yml",
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str | None = None,
) -> str:
    """The repository's Alertmanager config with only what a test must change rewritten:
    the URL of every webhook receiver (to ``webhook_url``), the grouping timers of every route
    (``group_wait``/``group_interval``, optionally ``repeat_interval``), and the template globs made
    absolute so the file can live in a temporary directory. Routing, grouping labels, receivers and
    inhibition rules stay as committed.
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    for receiver in config.get("receivers", []):
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        route["group_wait"] = group_wait
        route["group_interval"] = group_interval
        if repeat_interval is not None:
            route["repeat_interval"] = repeat_interval
        routes.extend(route.get("routes", []))
    config["templates"] = [str(source.parent / pattern) for pattern in config.get("templates", [])]
    return yaml.safe_dump(config, sort_keys=False)
