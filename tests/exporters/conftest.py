"""Real targets for the exporters, started on loopback by fixtures and stopped by PID."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor_service.config import ModelConfig
from monitor_service.results import CalculationResult
from tests.conftest import diamonds_model, rows_of
from tests.support.processes import (
    LOOPBACK,
    REPO_ROOT,
    ProcessError,
    RunningProcess,
    find_binary,
    free_port,
    start_process,
    wait_for_http,
)
from tests.support.reports import calculation

T0 = 1_764_450_000.0  # 2025-11-29 21:00 UTC


def evidently_binary() -> str:
    beside = Path(sys.executable).parent / "evidently"  # installed with the package, in its venv
    return str(beside) if beside.exists() else find_binary("evidently", env_var="EVIDENTLY_BIN")


def start_evidently_ui(workspace: Path, log: Path) -> RunningProcess:
    port = free_port()
    process = start_process(
        "evidently-ui",
        [evidently_binary(), "ui", "--workspace", str(workspace), "--host", LOOPBACK, "--port", str(port)],
        log,
    )
    process.base_url = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_http(process.base_url + "/api/version", process=process, timeout=180)
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture
def evidently_ui(tmp_path: Path) -> Iterator[tuple[RunningProcess, Path]]:
    workspace = tmp_path / "workspace"
    process = start_evidently_ui(workspace, tmp_path / "evidently-ui.log")
    try:
        yield process, workspace
    finally:
        process.stop()


@pytest.fixture(scope="session")
def diamonds() -> ModelConfig:
    return ModelConfig.model_validate(diamonds_model())


@pytest.fixture(scope="session")
def calculations(diamonds: ModelConfig) -> list[tuple[CalculationResult, str]]:
    """Four real calculations an hour apart: two calm windows, then two drifted ones."""
    windows = [("production", 800, 0), ("production", 800, 1000), ("drifted", 800, 0), ("drifted", 800, 1000)]
    return [
        calculation(diamonds, rows_of(split, count, start), T0 + 3600 * i)
        for i, (split, count, start) in enumerate(windows)
    ]


def mlflow_binary() -> str:
    """The `mlflow` command of a full MLflow install: its server is not in mlflow-skinny, and the
    full package pins versions the monitor's venv must not take, so it lives in a venv of its own
    (`make mlflow-server` creates .venv-mlflow)."""
    candidates = [os.environ.get("MLFLOW_BIN"), str(REPO_ROOT / ".venv-mlflow" / "bin" / "mlflow")]
    for candidate in [*candidates, shutil.which("mlflow")]:
        if candidate and Path(candidate).exists():
            return candidate
    raise ProcessError("no MLflow server: run `make mlflow-server` (creates .venv-mlflow) or set MLFLOW_BIN")


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[RunningProcess]:
    port = free_port()
    root = tmp_path / "mlflow"
    root.mkdir()
    process = start_process(
        "mlflow",
        [
            mlflow_binary(),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        tmp_path / "mlflow.log",
        cwd=root,
        # No background job runner (a pool of worker processes the tests never use).
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    process.base_url = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_http(process.base_url + "/health", process=process, timeout=240)
        yield process
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
