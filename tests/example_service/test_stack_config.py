"""config/stack.yaml: valid, its references load, and it describes what the model service sends."""

from __future__ import annotations

from pathlib import Path

from example_model_service.models import CATEGORICAL, MONITOR_MODELS, NUMERICAL, PROBABILITY_COLUMN, TARGETS
from monitor_service.config import load_config
from monitor_service.service import load_models

STACK = Path(__file__).resolve().parents[2] / "config" / "stack.yaml"


def test_stack_config_loads_both_models_and_their_references() -> None:
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
        assert monitored.task == model
        assert columns.id == "request_id"
        assert columns.target == TARGETS[model]
        assert columns.prediction == "prediction"
        assert columns.numerical == NUMERICAL
        assert columns.categorical == CATEGORICAL
        assert columns.probability == (PROBABILITY_COLUMN if model == "classification" else None)
