from __future__ import annotations

from pathlib import Path

import pytest

from monitor_service.config import load_config, parse_config, parse_duration
from monitor_service.errors import ConfigError
from tests.conftest import ROOT, diamonds_model, write_config


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.yaml", ROOT, environ={})
    return caught.value.problems


def test_config_example_loads_with_reference_resolved_against_file() -> None:
    config = load_config(ROOT / "config" / "example.yaml", environ={})
    model = config.models[0]
    assert model.reference == (ROOT / "datasets" / "diamonds" / "reference.csv").resolve()
    assert model.schedule.every == 30.0
    assert model.window.max_age == 3600.0
    assert (model.drift.mode, model.drift.alpha) == ("tested", 0.05)
    assert model.drift.per_column["carat"].min_effect == 0.2


def test_config_rejects_unknown_key_with_path_and_line() -> None:
    text = """
models:
  - name: m
    task: regression
    reference: r.csv
    columns:
      numerical: [a]
      numerica: [b]
"""
    problems = _problems(text)
    assert problems == ["models[0].columns.numerica (line 8): Extra inputs are not permitted"]


def test_config_reports_every_error_at_once() -> None:
    text = """
models:
  - name: "bad name!"
    task: ranking
    reference: r.csv
    columns: {numerical: [a]}
    schedule: {every: soon}
"""
    problems = _problems(text)
    assert len(problems) == 3
    assert any(p.startswith("models[0].name (line 3)") for p in problems)
    assert any(p.startswith("models[0].task (line 4)") for p in problems)
    assert any(p.startswith("models[0].schedule.every (line 7)") and "duration" in p for p in problems)


def test_config_rejects_column_with_two_roles() -> None:
    text = """
models:
  - {name: m, task: regression, reference: r.csv, columns: {numerical: [a], categorical: [a]}}
"""
    problems = _problems(text)
    assert len(problems) == 1
    assert problems[0].startswith("models[0].columns (line 3)") and "one role only" in problems[0]


def test_config_rejects_duplicate_model_names() -> None:
    text = """
models:
  - {name: m, task: regression, reference: r.csv, columns: {numerical: [a]}}
  - {name: m, task: regression, reference: r.csv, columns: {numerical: [a]}}
"""
    assert any("unique" in p and "['m']" in p for p in _problems(text))


def test_config_rejects_per_column_settings_for_undeclared_column() -> None:
    text = """
models:
  - name: m
    task: regression
    reference: r.csv
    columns: {numerical: [a]}
    drift: {per_column: {b: {stattest: ks}}}
"""
    assert any("['b']" in p for p in _problems(text))


def test_config_environment_overrides_host_port_and_tokens(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", [diamonds_model()])
    env = {
        "DRIFT_MONITOR_HOST": "0.0.0.0",
        "DRIFT_MONITOR_PORT": "9100",
        "DRIFT_MONITOR_ADMIN_TOKEN": "s3cret",
    }
    config = load_config(path, environ=env)
    assert (config.server.host, config.server.port, config.server.admin_token) == ("0.0.0.0", 9100, "s3cret")
    assert "s3cret" not in repr(config.server)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), (12, 12.0)]
)
def test_parse_duration_accepts_units(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0s", True])
def test_parse_duration_rejects_nonsense(text: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_config_refuses_duplicate_keys_with_both_lines() -> None:
    text = """
models:
  - name: m
    task: regression
    reference: r.csv
    columns: {numerical: [a], numerical: [b]}
    task: classification
"""
    problems = _problems(text)
    assert "models[0].task (lines 4 and 7): duplicate key; YAML would keep only the last" in problems
    assert (
        "models[0].columns.numerical (line 6, twice): duplicate key; YAML would keep only the last"
        in problems
    )


def test_config_allows_overriding_a_merged_key() -> None:
    text = """
defaults: &defaults {task: regression, reference: r.csv, columns: {numerical: [a]}}
models:
  - <<: *defaults
    name: m
    task: classification
"""
    problems = _problems(text)  # `defaults` is not a config key; the merge itself is fine
    assert problems == ["defaults (line 2): Extra inputs are not permitted"]


def test_config_refuses_min_rows_above_max_rows_naming_both() -> None:
    text = """
models:
  - name: m
    task: regression
    reference: r.csv
    columns: {numerical: [a]}
    window:
      max_rows: 2000
    schedule:
      min_rows: 50000
"""
    (problem,) = _problems(text)
    assert problem.startswith(
        "models[0].schedule.min_rows (line 10) = 50000 exceeds models[0].window.max_rows (line 8) = 2000"
    )


def test_config_refuses_min_rows_above_the_default_max_rows() -> None:
    text = """
models:
  - {name: m, task: regression, reference: r.csv, columns: {numerical: [a]}, schedule: {min_rows: 20000}}
"""
    (problem,) = _problems(text)
    assert (
        "models[0].schedule.min_rows (line 3) = 20000 exceeds models[0].window.max_rows (default) = 10000"
        in problem
    )


@pytest.mark.parametrize(
    ("metrics", "columns", "expected"),
    [
        (["prediction_drift"], {"numerical": ["a"]}, "prediction_drift needs columns.prediction"),
        (["target_drift"], {"numerical": ["a"], "prediction": "p"}, "target_drift needs columns.target"),
    ],
)
def test_config_refuses_metrics_without_their_columns(
    metrics: list[str], columns: dict[str, object], expected: str
) -> None:
    text = f"""
models:
  - name: m
    task: regression
    reference: r.csv
    columns: {columns}
    metrics: {metrics}
"""
    problems = _problems(text)
    assert any(p.startswith("models[0].metrics (line 7)") and expected in p for p in problems), problems


def test_config_default_metrics_skip_what_the_columns_do_not_allow() -> None:
    text = """
models:
  - {name: m, task: regression, reference: r.csv, columns: {numerical: [a]}}
"""
    assert parse_config(text, "t.yaml", ROOT, environ={}).models[0].metrics


def test_config_protect_probes_needs_a_metrics_token(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", [diamonds_model()], protect_probes=True)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert any("metrics_token" in p for p in caught.value.problems)
    assert load_config(path, environ={"DRIFT_MONITOR_METRICS_TOKEN": "m"}).server.protect_probes


def test_config_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", [diamonds_model()])
    path.write_text(path.read_text() + "storage:\n  data_dir: state\n")
    assert load_config(path, environ={}).storage.data_dir == (tmp_path / "state").resolve()
