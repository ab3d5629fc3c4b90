"""config/stack.yaml: valid, its references load, and it describes what the model service sends."""

from __future__ import annotations

from pathlib import Path

from example_model_service.models import (
    CATEGORICAL,
    MONITOR_MODELS,
    NUMERICAL,
    PRICE_BANDS,
    PROBABILITY_COLUMN,
    TARGETS,
    TASKS,
)
from monitor_service.config import load_config
from monitor_service.model_quality.checks import check_model_quality
from monitor_service.service import load_models

STACK = Path(__file__).resolve().parents[2] / "config" / "stack.yaml"


def test_stack_config_loads_every_model_and_its_reference() -> None:
    config = load_config(STACK, environ={})
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 8000  # rules/prometheus.yml scrapes monitor:8000
    loaded = load_models(config)
    assert set(loaded) == set(MONITOR_MODELS.values())
    for model in loaded.values():
        assert len(model.reference) == 10_000


def test_stack_config_columns_match_the_model_service() -> None:
    config = load_config(STACK, environ={})
    for model, name in MONITOR_MODELS.items():
        monitored = config.model(name)
        assert monitored is not None
        columns = monitored.columns
        assert monitored.task == TASKS[model]
        assert columns.id == "request_id"
        assert columns.target == TARGETS[model]
        assert columns.prediction == "prediction"
        assert columns.numerical == NUMERICAL
        assert columns.categorical == CATEGORICAL
        assert columns.probability == (PROBABILITY_COLUMN if model == "classification" else None)


def test_stack_config_measures_the_multiclass_model_on_its_bands() -> None:
    config = load_config(STACK, environ={})
    loaded = load_models(config)[MONITOR_MODELS["price_band"]]
    check = check_model_quality(config, loaded.index, loaded.reference)
    assert check.errors == [] and check.warnings == []
    assert "multiclass, 5 classes" in check.summary
    monitored = config.model(MONITOR_MODELS["price_band"])
    assert monitored is not None
    assert monitored.quality.classes == [name for name, _ in PRICE_BANDS]
