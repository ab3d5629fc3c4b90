"""plan_reload: what a new config changes and whether it needs a restart, decided without applying."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor_service.config import MonitorConfig, load_config
from monitor_service.reload import plan_reload
from tests.conftest import diamonds_model, write_config


def _config(tmp_path: Path, *models: dict[str, Any], **server: Any) -> MonitorConfig:
    return load_config(write_config(tmp_path / "c.yaml", list(models), **server), environ={})


def test_plan_reload_of_the_same_config_changes_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path, diamonds_model())
    plan = plan_reload(config, config)
    assert plan.applicable and plan.changed_models == () and plan.new_references == ()


def test_plan_reload_applies_drift_schedule_and_reference_changes(tmp_path: Path) -> None:
    running = _config(tmp_path, diamonds_model())
    other_reference = str(Path(diamonds_model()["reference"]).with_name("production.csv"))
    new = _config(
        tmp_path, diamonds_model(schedule={"every": "5m", "min_rows": 10}, reference=other_reference)
    )
    plan = plan_reload(running, new)
    assert plan.applicable
    assert plan.changed_models == ("diamonds",)
    assert plan.new_references == ("diamonds",)


def test_plan_reload_needs_a_restart_for_columns_models_and_server(tmp_path: Path) -> None:
    running = _config(tmp_path, diamonds_model())
    columns = {**diamonds_model()["columns"], "numerical": ["carat"]}
    assert not plan_reload(running, _config(tmp_path, diamonds_model(columns=columns))).applicable
    smaller = diamonds_model(window={"max_rows": 7}, schedule={"every": "1h", "min_rows": 7})
    assert not plan_reload(running, _config(tmp_path, smaller)).applicable
    two = _config(tmp_path, diamonds_model(), diamonds_model(name="other"))
    assert "the list of models" in plan_reload(running, two).restart_needed
    moved = _config(tmp_path, diamonds_model(), port=9999)
    assert "server or storage settings" in plan_reload(running, moved).restart_needed


def test_plan_reload_needs_a_restart_for_contracts_timestamps_and_age_by(tmp_path: Path) -> None:
    running = _config(tmp_path, diamonds_model())
    for change in (
        {"contracts": {"columns": {"carat": {"max": 3}}}},
        {"contracts": {"normalise": False}},
        {"timestamps": {"max_ahead": "1h"}},
    ):
        plan = plan_reload(running, _config(tmp_path, diamonds_model(**change)))
        assert plan.restart_needed == ("contracts, timestamps or window.age_by of model 'diamonds'",), change
