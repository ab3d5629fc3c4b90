"""MLflow export against a real `mlflow server` (SQLite backend, local artifacts) on loopback,
read back through MlflowClient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from monitor_service.config import MlflowExport
from monitor_service.exporters import ExportDispatcher
from monitor_service.exporters.mlflow import MlflowExporter, result_metrics
from monitor_service.results import CalculationResult
from tests.support.processes import RunningProcess

pytestmark = pytest.mark.integration


def _export(settings: MlflowExport, calculations: list[tuple[CalculationResult, str]]) -> None:
    dispatcher = ExportDispatcher([MlflowExporter(settings)])
    for result, snapshot in calculations:
        assert dispatcher.submit("diamonds", result, snapshot)
    assert dispatcher.drain(600)
    stats = dispatcher.stats["mlflow"]
    dispatcher.close()
    assert (stats.pushed, stats.failed, stats.last_error) == (len(calculations), 0, None)


def test_mlflow_run_per_calculation_round_trip(
    mlflow_server: RunningProcess, calculations: list[tuple[CalculationResult, str]], tmp_path: Path
) -> None:
    settings = MlflowExport(tracking_uri=mlflow_server.base_url, run_per="calculation")
    _export(settings, calculations[1:3])  # one calm window, one drifted
    client = MlflowClient(mlflow_server.base_url)
    experiment = client.get_experiment_by_name("drift-monitor/diamonds")
    assert experiment is not None
    runs = sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.start_time)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    for run, (result, _) in zip(runs, calculations[1:3], strict=True):
        assert run.info.start_time == int(result.finished_at * 1000)
        assert run.data.metrics == pytest.approx(result_metrics(result))
        assert run.data.metrics["dataset_drift"] == float(result.dataset_drift)  # type: ignore[arg-type]
        assert run.data.params == {"drift_mode": "tested", "alpha": str(result.alpha), "correction": "holm"}
        assert result.classifier is not None
        assert run.data.metrics["domain_classifier_auc"] == pytest.approx(result.classifier.auc)
        carat = next(c for c in result.columns if c.column == "carat")
        assert run.data.tags["drift_monitor.stattest.carat"].startswith(carat.stattest)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"report.html", "result.json"}
        saved = Path(client.download_artifacts(run.info.run_id, "result.json", str(tmp_path)))
        assert json.loads(saved.read_text()) == json.loads(json.dumps(result.as_dict()))
        html = Path(client.download_artifacts(run.info.run_id, "report.html", str(tmp_path))).read_text()
        assert "drawDashboard" in html
    assert [r.data.metrics["dataset_drift"] for r in runs] == [0.0, 1.0]


def test_mlflow_run_per_day_appends_time_series_and_survives_a_restart(
    mlflow_server: RunningProcess, calculations: list[tuple[CalculationResult, str]]
) -> None:
    settings = MlflowExport(
        tracking_uri=mlflow_server.base_url, run_per="day", experiment_prefix="daily/", log_report=False
    )
    _export(settings, calculations[:2])
    _export(settings, calculations[2:])  # a new exporter, as after a restart: the same day's run
    client = MlflowClient(mlflow_server.base_url)
    experiment = client.get_experiment_by_name("daily/diamonds")
    assert experiment is not None
    days: dict[str, list[str]] = {}
    for run in client.search_runs([experiment.experiment_id]):
        days.setdefault(run.data.tags["drift_monitor.day"], []).append(run.info.run_id)
    # 21:00, 22:00, 23:00 UTC on the 29th, then 00:00 on the 30th
    assert {day: len(ids) for day, ids in days.items()} == {"2025-11-29": 1, "2025-11-30": 1}
    (first_day,) = days["2025-11-29"]
    history = client.get_metric_history(first_day, "drifted_columns_share")
    expected = [r.drifted_ratio for r, _ in calculations[:3]]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(expected)
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [
        int(r.finished_at) for r, _ in calculations[:3]
    ]
    assert client.get_run(first_day).info.status == "FINISHED"  # closed when the next day began
    results = [a.path for a in client.list_artifacts(first_day, "results")]
    assert len(results) == 3
