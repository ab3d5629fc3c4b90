"""Scoring rows and reporting them to the drift monitor. No HTTP here: the API layer calls this."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from example_model_service.models import (
    FEATURES,
    MONITOR_MODELS,
    PROBABILITY_COLUMN,
    ModelName,
    Predictors,
    artifacts_exist,
    feature_frame,
    load,
)

log = logging.getLogger(__name__)


class MonitorSink(Protocol):
    """What the service needs of `monitor_service.client.MonitorClient` (tests pass a fake)."""

    def send_rows(self, model: str, rows: list[dict[str, Any]]) -> None: ...

    def stats(self) -> Any: ...

    def close(self, timeout: float = ...) -> Any: ...


@dataclass(frozen=True)
class Answer:
    request_id: str
    prediction: float | int | str
    probability: float | None = None


class PredictionService:
    """Scores rows with the fitted models and hands every scored row to the monitor sink."""

    def __init__(self, predictors: Predictors, monitor: MonitorSink | None) -> None:
        self.predictors = predictors
        self.monitor = monitor

    def predict(self, model: ModelName, rows: Sequence[Mapping[str, Any]]) -> list[Answer]:
        """One answer per row, in order; a row's own `request_id` is kept, others get a uuid4."""
        ids = [str(row.get("request_id") or uuid.uuid4()) for row in rows]
        outputs = self.predictors.predict(model, feature_frame(rows))
        answers = [Answer(i, out.value, out.probability) for i, out in zip(ids, outputs, strict=True)]
        if self.monitor is not None:
            self.monitor.send_rows(MONITOR_MODELS[model], monitor_rows(rows, answers))
        return answers


def monitor_rows(rows: Sequence[Mapping[str, Any]], answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """The rows as the monitor's config/stack.yaml declares them: id, features, prediction(s)."""
    out: list[dict[str, Any]] = []
    for row, answer in zip(rows, answers, strict=True):
        item: dict[str, Any] = {"request_id": answer.request_id}
        item.update({name: row.get(name) for name in FEATURES})
        item["prediction"] = answer.prediction
        if answer.probability is not None:
            item[PROBABILITY_COLUMN] = answer.probability
        out.append(item)
    return out


def load_or_train(model_dir: Path, *, train_if_missing: bool = True) -> Predictors:
    """Load the models from `model_dir`; train them first when they are not there yet."""
    if not artifacts_exist(model_dir):
        if not train_if_missing:
            raise FileNotFoundError(f"no trained models in {model_dir}")
        from example_model_service.train import train_models

        log.info("no models in %s: training them now", model_dir)
        return train_models(model_dir)
    predictors = load(model_dir)
    log.info("loaded the models from %s", model_dir)
    return predictors
