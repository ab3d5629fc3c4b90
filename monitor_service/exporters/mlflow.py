"""MLflow as a target: each stored calculation logged to an experiment per model (`mlflow` extra).

Experiment `experiment_prefix + model`, created when missing. `run_per` chooses the shape:

- `calculation` (default): one run per stored calculation, named `<model> <time>`, with the
  verdict as metrics (step 0), the stat tests as tags, the HTML report as `report.html` and the
  result as `result.json`. Runs compare side by side in MLflow's run table.
- `day`: one run per model and UTC day, tagged `drift_monitor.day`; every calculation appends to
  the same metric histories (step = Unix seconds), so MLflow's charts show the day as time series;
  reports land under `reports/<time>.html`, results under `results/<time>.json`. The run of a
  day is found again after a restart.

Metrics: `dataset_drift` (1/0), `drifted_columns`, `tested_columns`, `drifted_columns_share`,
`current_rows`, `reference_rows`, `labelled_rows`, `drift_score.<column>`,
`drift_detected.<column>`, `missing_share.<column>`, `quality.<metric>`, `tests_failed`,
`tests_failed_critical` and `test_passed.<test>` (1/0); in tested drift mode also
`drift_corrected_p_value.<column>`, `drift_effect_size.<column>`, `untestable_columns` and
`domain_classifier_auc` (`drift_score` is then the raw p-value). Keys keep only the characters MLflow
allows. Params: `drift_mode`, and `drift_share` (legacy) or `alpha` and `correction` (tested).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

from monitor_service.config import MlflowExport
from monitor_service.results import CalculationResult

TAG_PREFIX = "drift_monitor."
_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
_BATCH = 1000  # MLflow's log_batch accepts at most 1000 metrics per call


def metric_key(name: str) -> str:
    return _KEY.sub("_", name)


def result_metrics(result: CalculationResult) -> dict[str, float]:
    """The calculation as flat MLflow metrics."""
    values: dict[str, float] = {
        "drifted_columns": float(result.drifted_columns),
        "tested_columns": float(result.tested_columns),
        "drifted_columns_share": result.drifted_ratio,
        "current_rows": float(result.current_rows),
        "reference_rows": float(result.reference_rows),
        "labelled_rows": float(result.labelled_rows),
        "tests_failed": float(len(result.failed_tests)),
        "tests_failed_critical": float(sum(t.critical for t in result.failed_tests)),
    }
    if result.dataset_drift is not None:
        values["dataset_drift"] = float(result.dataset_drift)
    for column in result.columns:
        values[metric_key(f"drift_score.{column.column}")] = column.score
        values[metric_key(f"drift_detected.{column.column}")] = float(column.detected)
        if column.corrected_p_value is not None:
            values[metric_key(f"drift_corrected_p_value.{column.column}")] = column.corrected_p_value
        if column.effect_size is not None:
            values[metric_key(f"drift_effect_size.{column.column}")] = column.effect_size
    if result.mode == "tested":
        values["untestable_columns"] = float(result.untestable_columns)
    if result.classifier is not None:
        values["domain_classifier_auc"] = result.classifier.auc
    for quality in result.quality:
        values[metric_key(f"missing_share.{quality.column}")] = quality.missing_current
    for name, value in result.model_quality.items():
        values[metric_key(f"quality.{name}")] = value
    for test in result.tests:
        if test.status != "skip":
            values[metric_key(f"test_passed.{test.name}")] = float(test.status == "pass")
    return values


def result_params(result: CalculationResult) -> dict[str, str]:
    """The drift settings the calculation ran with, as MLflow params."""
    if result.mode == "legacy":
        return {"drift_mode": "legacy", "drift_share": str(result.drift_share)}
    return {"drift_mode": result.mode, "alpha": str(result.alpha), "correction": str(result.correction)}


class MlflowExporter:
    """Logs stored calculations to MLflow through `MlflowClient` (mlflow-skinny is enough)."""

    name = "mlflow"

    def __init__(self, settings: MlflowExport) -> None:
        from mlflow import MlflowClient

        self.settings = settings
        self.client = MlflowClient(tracking_uri=settings.tracking_uri)
        self._experiments: dict[str, str] = {}
        self._day_runs: dict[str, tuple[str, str]] = {}  # model -> (day, run id)
        self._lock = threading.Lock()

    def experiment_name(self, model: str) -> str:
        return self.settings.experiment_prefix + model

    def push(self, model: str, result: CalculationResult, snapshot: str) -> None:
        with self._lock:
            experiment_id = self._experiment(model)
            at = datetime.fromtimestamp(result.finished_at, UTC)
            millis = int(result.finished_at * 1000)
            if self.settings.run_per == "day":
                run_id, step = self._day_run(experiment_id, model, at), int(result.finished_at)
                stamp = f"{at:%Y%m%dT%H%M%S}{at.microsecond // 1000:03d}Z"
                report, result_file = f"reports/{stamp}.html", f"results/{stamp}.json"
            else:
                run = self.client.create_run(
                    experiment_id,
                    start_time=millis,
                    tags=self._tags(model, {TAG_PREFIX + "calculated_at": at.isoformat()}),
                    run_name=f"{model} {at:%Y-%m-%d %H:%M:%S}",
                )
                run_id, step, report, result_file = run.info.run_id, 0, "report.html", "result.json"
            self._log(run_id, result, millis, step)
            self.client.log_text(run_id, json.dumps(result.as_dict(), indent=1), result_file)
            if self.settings.log_report:
                from monitor_service.engine.snapshot import snapshot_json_html

                self.client.log_text(run_id, snapshot_json_html(snapshot).html, report)
            if self.settings.run_per == "calculation":
                self.client.set_terminated(run_id, "FINISHED", end_time=millis)

    def close(self) -> None:
        with self._lock:
            self._experiments.clear()
            self._day_runs.clear()

    def _log(self, run_id: str, result: CalculationResult, millis: int, step: int) -> None:
        from mlflow.entities import Metric, Param, RunTag

        metrics = [Metric(key, value, millis, step) for key, value in result_metrics(result).items()]
        tags = [
            RunTag(
                metric_key(f"{TAG_PREFIX}stattest.{c.column}"), f"{c.stattest} (threshold {c.threshold:g})"
            )
            for c in result.columns
        ]
        tags.append(RunTag(TAG_PREFIX + "dataset_drift", str(result.dataset_drift).lower()))
        params = [Param(key, value) for key, value in result_params(result).items()] if step == 0 else []
        for start in range(0, max(len(metrics), 1), _BATCH):
            first = start == 0
            self.client.log_batch(
                run_id,
                metrics=metrics[start : start + _BATCH],
                params=params if first else [],
                tags=tags[:100] if first else [],
            )

    def _experiment(self, model: str) -> str:
        cached = self._experiments.get(model)
        if cached is not None:
            return cached
        name = self.experiment_name(model)
        found = self.client.get_experiment_by_name(name)
        if found is not None and found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        experiment_id: str = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(name, tags={TAG_PREFIX + "model": model})
        )
        self._experiments[model] = experiment_id
        return experiment_id

    def _day_run(self, experiment_id: str, model: str, at: datetime) -> str:
        day = at.strftime("%Y-%m-%d")
        cached = self._day_runs.get(model)
        if cached is not None and cached[0] == day:
            return cached[1]
        if cached is not None:  # a new day: the previous day's run is complete
            self.client.set_terminated(cached[1], "FINISHED")
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_PREFIX}day` = '{day}' and tags.`{TAG_PREFIX}model` = '{model}'",
            max_results=1,
        )
        if found:
            run_id: str = found[0].info.run_id
        else:
            run = self.client.create_run(
                experiment_id,
                start_time=int(at.timestamp() * 1000),
                tags=self._tags(model, {TAG_PREFIX + "day": day}),
                run_name=f"{model} {day}",
            )
            run_id = run.info.run_id
        self._day_runs[model] = (day, run_id)
        return run_id

    def _tags(self, model: str, extra: dict[str, str]) -> dict[str, Any]:
        return {TAG_PREFIX + "model": model, TAG_PREFIX + "run_per": self.settings.run_per, **extra}
