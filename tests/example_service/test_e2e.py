"""End to end on loopback: the real monitor (config/stack.yaml), the real model service and the
traffic command; the monitor must see every row and label and calculate on them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.processes import RunningProcess, free_port, poll_until, start_process, wait_for_http

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROWS = 600
MODELS = ("diamonds_regression", "diamonds_classification", "diamonds_price_band")


@dataclass
class Stack:
    monitor: RunningProcess
    service: RunningProcess


def _stack_config(path: Path, port: int) -> Path:
    """config/stack.yaml on a loopback port, calculations in a thread, references made absolute."""
    source = REPO / "config" / "stack.yaml"
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    config["server"].update(host="127.0.0.1", port=port, executor="thread")
    for model in config["models"]:
        model["reference"] = str((source.parent / model["reference"]).resolve())
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _env() -> dict[str, str]:
    """The test's environment without settings that would point the processes elsewhere."""
    drop = ("MONITOR_URL", "MONITOR_TOKEN", "MODEL_DIR", "HOST", "PORT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DRIFT_MONITOR_")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    monitor_port, service_port = free_port(), free_port()
    config = _stack_config(tmp / "stack.yaml", monitor_port)
    py = sys.executable
    monitor = start_process(
        "drift-monitor",
        [
            py,
            "-m",
            "monitor_service",
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(monitor_port),
        ],
        tmp / "monitor.log",
        env=_env(),
        cwd=REPO,
    )
    monitor.base_url = f"http://127.0.0.1:{monitor_port}"
    # An empty model directory: the service trains its models at start-up.
    service = start_process(
        "model-service",
        [
            py,
            "-m",
            "example_model_service",
            "--monitor-url",
            monitor.base_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(service_port),
            "--model-dir",
            str(tmp / "models"),
        ],
        tmp / "service.log",
        env=_env(),
        cwd=REPO,
    )
    service.base_url = f"http://127.0.0.1:{service_port}"
    try:
        wait_for_http(monitor.base_url + "/readyz", process=monitor, timeout=60)
        wait_for_http(service.base_url + "/readyz", process=service, timeout=60)
        yield Stack(monitor, service)
    finally:
        service_exit = service.stop(timeout=15)
        monitor_exit = monitor.stop(timeout=15)
    assert service_exit == 0, service.log_tail()
    assert monitor_exit == 0, monitor.log_tail()


def _models(base_url: str) -> dict[str, dict[str, Any]]:
    listing = requests.get(f"{base_url}/v1/models", timeout=5).json()
    return {m["name"]: m for m in listing["models"]}


def test_traffic_reaches_the_monitor_with_labels_and_calculates(stack: Stack) -> None:
    traffic = subprocess.run(
        [
            sys.executable,
            "-m",
            "example_model_service.traffic",
            "--service",
            stack.service.base_url,
            "--monitor",
            stack.monitor.base_url,
            "--scenario",
            "no_drift",
            "--rate",
            "5000",
            "--rows",
            str(ROWS),
            "--label-delay",
            "1",
            "--wait",
            "10",
        ],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert traffic.returncode == 0, traffic.stderr
    assert f"{ROWS}/{ROWS} rows" in traffic.stderr
    assert f"{len(MODELS) * ROWS} labels posted" in traffic.stderr

    poll_until(
        lambda: all(_models(stack.monitor.base_url)[m]["window_rows"] >= ROWS for m in MODELS),
        timeout=20,
        message=f"{ROWS} rows in the window of every model",
        on_timeout=stack.service.log_tail,
    )
    for model in MODELS:
        response = requests.post(f"{stack.monitor.base_url}/v1/models/{model}/calculate", timeout=60)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["current_rows"] == ROWS
        assert result["labelled_rows"] == ROWS, "every row got its label through the labels endpoint"
        assert result["dataset_drift"] is False, result
        assert result["model_quality"], result

    monitor_metrics = requests.get(f"{stack.monitor.base_url}/metrics", timeout=5).text
    for model in MODELS:
        assert f'drift_monitor_dataset_drift{{model="{model}"}} 0.0' in monitor_metrics
        assert f'drift_monitor_labelled_rows{{model="{model}"}} {ROWS}.0' in monitor_metrics
    assert 'drift_monitor_model_quality{metric="mae",model="diamonds_regression"}' in monitor_metrics
    assert 'drift_monitor_model_quality{metric="roc_auc",model="diamonds_classification"}' in monitor_metrics
    assert 'drift_monitor_model_quality{metric="f1_macro",model="diamonds_price_band"}' in monitor_metrics
    assert 'drift_monitor_model_class_recall{class="luxury",model="diamonds_price_band"}' in monitor_metrics

    metrics = requests.get(f"{stack.service.base_url}/metrics", timeout=5).text
    assert f'model_service_monitor_items_total{{outcome="sent"}} {len(MODELS) * ROWS}.0' in metrics
    assert f'model_service_predictions_total{{model="regression"}} {ROWS}.0' in metrics
