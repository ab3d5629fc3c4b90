#!/usr/bin/env python3
"""Run Prometheus and Alertmanager locally with the repository's configs, without Docker.

    python scripts/local_stack.py --monitor 127.0.0.1:8000 --model-service 127.0.0.1:8080

Uses the system binaries (Debian: apt-get install prometheus prometheus-alertmanager), binds only
127.0.0.1, and rewrites rules/prometheus.yml's targets (the compose service names) to the given
host:port pairs; the rules, the alert routing, grouping and inhibition stay as committed. Prints the
URLs, runs until Ctrl-C (or SIGTERM), then stops both processes. Every option can also be set by the
environment variable named in its help.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from monitor_service.child_processes import ProcessError, RunningProcess, start_and_wait

REPO_ROOT = Path(__file__).resolve().parents[1]
RULES = REPO_ROOT / "rules"
READY_TIMEOUT = 30.0


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(
        f"none of {', '.join(names)} found on PATH; on Debian: "
        "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
    )


def prometheus_config(
    monitor: str,
    model_service: str,
    prometheus_port: int,
    alertmanager_port: int,
    scrape_interval: str | None = None,
) -> str:
    """rules/prometheus.yml with loopback targets and absolute rule file paths; ``scrape_interval``
    replaces the scrape and rule evaluation intervals (e.g. "1s" for quick feedback)."""
    config: dict[str, Any] = yaml.safe_load((RULES / "prometheus.yml").read_text())
    if scrape_interval:
        config["global"].update(
            scrape_interval=scrape_interval,
            scrape_timeout=scrape_interval,
            evaluation_interval=scrape_interval,
        )
    targets = {
        "drift-monitor": monitor,
        "example-model-service": model_service,
        "prometheus": f"127.0.0.1:{prometheus_port}",
        "alertmanager": f"127.0.0.1:{alertmanager_port}",
    }
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            # the compose cluster profile's members, found by DNS: none on one machine
            job.pop("dns_sd_configs", None)
            job.pop("relabel_configs", None)
    config["rule_files"] = [str(RULES / name) for name in config["rule_files"]]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
    ]
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(webhook_url: str | None) -> str:
    """rules/alertmanager.yml with absolute template paths and, if given, another webhook URL."""
    config: dict[str, Any] = yaml.safe_load((RULES / "alertmanager.yml").read_text())
    config["templates"] = [str(RULES / pattern) for pattern in config.get("templates", [])]
    if webhook_url:
        for receiver in config["receivers"]:
            for webhook in receiver.get("webhook_configs", []):
                webhook["url"] = webhook_url
    return yaml.safe_dump(config, sort_keys=False)


class Stack:
    """The two child processes, started in their own sessions so Ctrl-C reaches only this script."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.children: dict[str, RunningProcess] = {}

    def start(self, name: str, args: Sequence[str], base_url: str) -> None:
        self.children[name] = start_and_wait(
            name, args, self.data_dir / f"{name}.log", base_url, "/-/ready", READY_TIMEOUT, own_session=True
        )

    def exited(self) -> str | None:
        return next((name for name, child in self.children.items() if not child.is_running()), None)

    def stop(self) -> None:
        for name, child in reversed(list(self.children.items())):
            code = child.stop(timeout=15)  # SIGTERM to this PID only
            _say(f"stopped {name} (pid {child.pid}, exit {code})")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--monitor",
        default=env("DRIFT_MONITOR_TARGET", "127.0.0.1:8000"),
        help="host:port of the drift monitor (DRIFT_MONITOR_TARGET, default 127.0.0.1:8000)",
    )
    parser.add_argument(
        "--model-service",
        default=env("MODEL_SERVICE_TARGET", "127.0.0.1:8080"),
        help="host:port of the example model service (MODEL_SERVICE_TARGET, default 127.0.0.1:8080)",
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=int(env("PROMETHEUS_PORT", "9090")),
        help="Prometheus port on 127.0.0.1 (PROMETHEUS_PORT, default 9090)",
    )
    parser.add_argument(
        "--alertmanager-port",
        type=int,
        default=int(env("ALERTMANAGER_PORT", "9093")),
        help="Alertmanager port on 127.0.0.1 (ALERTMANAGER_PORT, default 9093)",
    )
    parser.add_argument(
        "--webhook-url",
        default=env("ALERT_WEBHOOK_URL"),
        help="URL for the default webhook receiver (ALERT_WEBHOOK_URL; default: rules/alertmanager.yml's)",
    )
    parser.add_argument(
        "--scrape-interval",
        default=env("SCRAPE_INTERVAL"),
        help="scrape and evaluation interval, e.g. 1s (SCRAPE_INTERVAL; default: rules/prometheus.yml's)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=env("LOCAL_STACK_DIR"),
        help="configs, data and logs (LOCAL_STACK_DIR; default: a new temporary directory)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    data_dir: Path = args.data_dir or Path(tempfile.mkdtemp(prefix="drift-monitor-stack-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    prometheus_yml = data_dir / "prometheus.yml"
    prometheus_yml.write_text(
        prometheus_config(
            args.monitor,
            args.model_service,
            args.prometheus_port,
            args.alertmanager_port,
            args.scrape_interval,
        )
    )
    alertmanager_yml = data_dir / "alertmanager.yml"
    alertmanager_yml.write_text(alertmanager_config(args.webhook_url))

    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    am_url = f"http://127.0.0.1:{args.alertmanager_port}"
    prom_url = f"http://127.0.0.1:{args.prometheus_port}"
    stack = Stack(data_dir)
    try:
        stack.start(
            "alertmanager",
            [
                _binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={alertmanager_yml}",
                f"--storage.path={data_dir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{args.alertmanager_port}",
                f"--web.external-url={am_url}",
                "--cluster.listen-address=",
            ],
            am_url,
        )
        stack.start(
            "prometheus",
            [
                _binary("prometheus"),
                f"--config.file={prometheus_yml}",
                f"--storage.tsdb.path={data_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{args.prometheus_port}",
                f"--web.external-url={prom_url}",
                "--web.enable-lifecycle",
            ],
            prom_url,
        )
        _say(f"Prometheus   {prom_url}  (classic UI: {prom_url}/classic/alerts, {prom_url}/classic/targets)")
        _say(f"Alertmanager {am_url}")
        _say(f"scraping     drift-monitor={args.monitor} example-model-service={args.model_service}")
        _say(f"configs, data and logs in {data_dir}")
        _say("Ctrl-C stops both.")
        while not stop.wait(0.5):
            died = stack.exited()
            if died:
                _say(f"{died} exited unexpectedly; see {data_dir / (died + '.log')}")
                return 1
        return 0
    except ProcessError as exc:
        _say(str(exc))
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
