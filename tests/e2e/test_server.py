"""End to end: the real server process, the bundled example data, results read from /metrics."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import diamonds_model, rows_of, write_config
from tests.support.browser import dump_dom
from tests.support.processes import RunningProcess, free_port, poll_until, start_monitor

pytestmark = pytest.mark.integration


class Monitor:
    """A running monitor process and its base URL."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: RunningProcess = start_monitor(
            config, port, log_dir / f"monitor-{port}.log", ready_path="/readyz", timeout=90
        )


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    tmp = tmp_path_factory.mktemp("e2e")
    models = [diamonds_model(name="calm"), diamonds_model(name="shifted")]
    config = write_config(tmp / "monitor.yaml", models, executor="process")
    running = Monitor(config, tmp)
    yield running
    assert running.process.stop(timeout=20) == 0, running.process.log_tail()


def _samples(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(base_url + "/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _post_rows(base_url: str, model: str, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), 1000):
        response = requests.post(
            f"{base_url}/v1/models/{model}/rows", json={"rows": rows[start : start + 1000]}, timeout=30
        )
        assert response.status_code == 202, response.text


def test_server_no_drift_then_drift_visible_on_metrics(monitor: Monitor) -> None:
    url = monitor.base_url
    _post_rows(url, "calm", rows_of("production", 3000))
    _post_rows(url, "shifted", rows_of("drifted", 3000))
    for model in ("calm", "shifted"):
        assert requests.post(f"{url}/v1/models/{model}/calculate", timeout=120).status_code == 200
    samples = _samples(url)
    assert _value(samples, "drift_monitor_dataset_drift", model="calm") == 0
    assert _value(samples, "drift_monitor_dataset_drift", model="shifted") == 1
    for column in ("carat", "x", "y", "z"):
        assert (
            _value(
                samples, "drift_monitor_column_drift_detected", model="shifted", column=column, role="feature"
            )
            == 1
        ), column
        assert (
            _value(
                samples, "drift_monitor_column_drift_detected", model="calm", column=column, role="feature"
            )
            == 0
        ), column
    assert (
        _value(
            samples,
            "drift_monitor_column_drift_detected",
            model="shifted",
            column="prediction",
            role="prediction",
        )
        == 1
    )
    assert _value(samples, "drift_monitor_rows_ingested_total", model="shifted") == 3000
    assert _value(samples, "drift_monitor_window_rows", model="calm") == 3000


def test_server_metrics_pass_promtool(monitor: Monitor) -> None:
    text = requests.get(monitor.base_url + "/metrics", timeout=5).text
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install prometheus (see .ci/run)"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_server_serves_openapi_docs(monitor: Monitor) -> None:
    schema = requests.get(monitor.base_url + "/openapi.json", timeout=5).json()
    assert "/v1/models/{model}/rows" in schema["paths"]
    assert requests.get(monitor.base_url + "/docs", timeout=5).status_code == 200


def test_server_exits_2_on_bad_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.yaml", [diamonds_model(task="ranking")])
    done = subprocess.run(
        [sys.executable, "-m", "monitor_service", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "models[0].task" in done.stderr


def test_server_shuts_down_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = write_config(tmp_path / "monitor.yaml", [diamonds_model()], executor="process")
    running = Monitor(config, tmp_path)
    _post_rows(running.base_url, "diamonds", rows_of("production", 500))
    assert running.process.stop(timeout=20) == 0  # stop() sends SIGTERM first
    assert "Application shutdown complete" in running.process.log_tail()


def test_server_exits_2_on_stattest_unknown_to_evidently(tmp_path: Path) -> None:
    """Both drift modes, in one start: every unknown test is named, then the server exits 2."""
    legacy = diamonds_model(name="legacy", drift={"mode": "legacy", "stattest": "no_such_test"})
    tested = diamonds_model(name="tested", drift={"per_column": {"carat": {"test": "no_such_test"}}})
    config = write_config(tmp_path / "bad.yaml", [legacy, tested], executor="process")
    done = subprocess.run(
        [sys.executable, "-m", "monitor_service", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "models[0].drift.stattest: unknown stat test 'no_such_test'" in done.stderr
    assert "models[1].drift.per_column.carat.test" in done.stderr


def test_server_html_report_renders_drift_table_in_chromium(monitor: Monitor) -> None:
    url = monitor.base_url
    if requests.get(f"{url}/v1/models/shifted/results", timeout=5).json()["window_rows"] == 0:
        _post_rows(url, "shifted", rows_of("drifted", 3000))
    result = requests.post(f"{url}/v1/models/shifted/calculate", timeout=120).json()
    links = requests.get(f"{url}/v1/models", timeout=5).json()["models"][1]["links"]
    dom = dump_dom(url + links["report"], budget_ms=15_000)
    assert "<table" in dom, dom[-2000:]
    # Our verdict on top as Evidently widgets (the share-rule widget is not the verdict), then a test
    # widget and an effect widget per column, rendered by Evidently's JavaScript.
    assert ">Drift verdict of model shifted<" in dom, dom[:2000]
    assert "Share of Drifted Columns" not in dom
    rendered = re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)  # not the embedded JSON
    for column in result["columns"]:
        assert f">{column['column']}<" in rendered
        assert rendered.count(f"Drift in column '{column['column']}'") == 2, column["column"]
    if result["classifier"] is not None:
        assert f">{result['classifier']['auc']:.3f} (needs " in rendered


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_worker_process_exits_when_server_is_killed(tmp_path: Path) -> None:
    config = write_config(tmp_path / "monitor.yaml", [diamonds_model()], executor="process")
    running = Monitor(config, tmp_path)
    workers = [
        p
        for p in _children(running.process.pid)
        if "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()
    ]
    assert workers, "the calculation worker should be a child of the server"
    assert running.process.stop(signal.SIGKILL) == -signal.SIGKILL

    def gone() -> bool:
        return not any(
            Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]
            for p in workers
        )

    poll_until(gone, timeout=15, message="the orphaned worker to exit")
