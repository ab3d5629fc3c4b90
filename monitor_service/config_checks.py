"""Checks across the keys of a valid config: settings that parse but cannot work together.

Each problem names every path involved with its line in the file (or `(default)`), so the user sees
both ends of a conflict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from monitor_service.values import NotACategory, category
from monitor_service.yamlsource import Loc, located

if TYPE_CHECKING:
    from monitor_service.config import ColumnContract, ModelConfig, MonitorConfig


def cross_checks(config: MonitorConfig, root: yaml.Node | None) -> list[str]:
    problems: list[str] = []
    for index, model in enumerate(config.models):
        problems.extend(_model_checks(model, ("models", index), root))
    if config.cluster is not None:
        problems.extend(_cluster_checks(config, root))
    return problems


def _cluster_checks(config: MonitorConfig, root: yaml.Node | None) -> list[str]:
    """Cluster mode keeps nothing on one member's disk: reports go to the files bucket, and
    exporters (which run on whichever member calculates) must push to a server (docs/cluster.md)."""
    problems = []
    ui = config.exporters.evidently_ui
    if ui is not None and ui.workspace is not None:
        problems.append(
            f"{located(root, ('exporters', 'evidently_ui', 'workspace'))}: in cluster mode every member "
            "pushes the reports it calculates; a workspace directory would hold one member's share. "
            "Use url: a remote Evidently UI (docs/cluster.md)"
        )
    mlflow = config.exporters.mlflow
    if mlflow is not None and not mlflow.tracking_uri.startswith(("http://", "https://")):
        problems.append(
            f"{located(root, ('exporters', 'mlflow', 'tracking_uri'))}: in cluster mode every member "
            "logs the calculations it runs; a local MLflow store would hold one member's share. "
            "Use an http(s):// MLflow tracking server (docs/cluster.md)"
        )
    return problems


def _model_checks(model: ModelConfig, loc: Loc, root: yaml.Node | None) -> list[str]:
    def at(*path: str | int) -> str:
        return located(root, (*loc, *path))

    problems = []
    if model.schedule.min_rows > model.window.max_rows:
        problems.append(
            f"{at('schedule', 'min_rows')} = {model.schedule.min_rows} exceeds "
            f"{at('window', 'max_rows')} = {model.window.max_rows}: the window never holds that many "
            "rows, so no scheduled calculation would ever run"
        )
    if model.window.age_by == "event_time" and not model.columns.timestamp:
        problems.append(
            f"{at('window', 'age_by')}: event_time needs columns.timestamp (the event time column)"
        )
    if "metrics" in model.model_fields_set:  # the default list skips what the columns cannot give
        if "prediction_drift" in model.metrics and not model.columns.prediction_columns:
            problems.append(
                f"{at('metrics')}: prediction_drift needs columns.prediction (or columns.probability)"
            )
        if "target_drift" in model.metrics and not model.columns.target:
            problems.append(f"{at('metrics')}: target_drift needs columns.target")
    kinds = value_kinds(model)
    for column, contract in model.contracts.columns.items():
        message = _contract_problem(column, contract, kinds, model)
        if message:
            problems.append(f"{at('contracts', 'columns', column)}: {message}")
    return problems


def value_kinds(model: ModelConfig) -> dict[str, bool]:
    """Every column whose values are compared, mapped to True when it is numerical."""
    cols = model.columns
    label_numerical = model.task == "regression"
    kinds = dict.fromkeys(cols.numerical, True) | dict.fromkeys(cols.categorical, False)
    if cols.target:
        kinds[cols.target] = label_numerical
    if isinstance(cols.prediction, str):
        kinds[cols.prediction] = label_numerical
    elif cols.prediction:
        kinds.update(dict.fromkeys(cols.prediction, True))
    if cols.probability:
        kinds[cols.probability] = True
    return kinds


def _contract_problem(
    column: str, contract: ColumnContract, kinds: dict[str, bool], model: ModelConfig
) -> str | None:
    if column in (model.columns.id, model.columns.timestamp):
        return "the id and timestamp columns have no contract (see `timestamps` for event times)"
    if column not in kinds:
        return "this column is not declared in `columns`"
    if kinds[column]:
        if contract.allowed is not None or contract.normalise is not None:
            return f"allowed and normalise apply to categorical columns; {column!r} is numerical"
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in contract.missing):
            return "the missing codes of a numerical column are numbers"
    elif contract.min is not None or contract.max is not None:
        return f"min and max apply to numerical columns; {column!r} is categorical"
    else:
        for value in [*(contract.allowed or ()), *contract.missing]:
            try:
                category(value)
            except NotACategory as exc:
                return f"{value!r} cannot be a category: {exc}"
    return None
