"""Config sections for stored reports, exporters and test suites: defaults, parsing, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor_service.config import load_config
from monitor_service.errors import ConfigError
from tests.conftest import diamonds_model


def _load(tmp_path: Path, environ: dict[str, str] | None = None, **top: Any) -> Any:
    raw = {"models": [top.pop("model", diamonds_model())], **top}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path, environ=environ or {})


def test_defaults_keep_reports_every_five_minutes_and_run_the_auto_tests(tmp_path: Path) -> None:
    config = _load(tmp_path)
    assert config.reports.enabled and config.reports.every == 300.0
    assert (config.reports.keep, config.reports.max_age, config.reports.max_bytes) == (
        1000,
        30 * 86400,
        1024**3,
    )
    assert config.exporters.evidently_ui is None and config.exporters.mlflow is None
    tests = config.models[0].tests
    assert tests.auto and tests.false_failure_rate == 0.01 and tests.critical == [] and tests.custom == []


@pytest.mark.parametrize(("every", "expected"), [(5, 5), ("5", 5.0), ("10m", 600.0), (2.5, 2.5)])
def test_reports_every_is_a_count_of_calculations_or_a_duration(
    tmp_path: Path, every: object, expected: object
) -> None:
    config = _load(tmp_path, reports={"every": every})
    assert config.reports.every == expected
    assert type(config.reports.every) is type(expected)


def test_evidently_ui_workspace_is_relative_to_the_config_and_the_secret_comes_from_env(
    tmp_path: Path,
) -> None:
    config = _load(
        tmp_path,
        environ={"DRIFT_MONITOR_EVIDENTLY_SECRET": "s3cret"},
        exporters={"evidently_ui": {"workspace": "ui-workspace"}},
    )
    ui = config.exporters.evidently_ui
    assert ui.workspace == (tmp_path / "ui-workspace").resolve()
    assert ui.secret == "s3cret"
    assert "s3cret" not in repr(ui)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"reports": {"every": 0}}, "at least 1"),
        ({"reports": {"keep": 0}}, "greater than or equal to 1"),
        ({"reports": {"every": "soon"}}, "duration"),
        ({"exporters": {"evidently_ui": {}}}, "exactly one of workspace"),
        ({"exporters": {"evidently_ui": {"workspace": "w", "url": "http://ui:8000"}}}, "exactly one"),
        ({"exporters": {"evidently_ui": {"url": "ftp://ui"}}}, "should match pattern"),
        ({"exporters": {"mlflow": {"tracking_uri": "http://m:5000", "run_per": "week"}}}, "calculation"),
        ({"exporters": {"mlflw": {}}}, "Extra inputs"),
    ],
)
def test_bad_report_and_exporter_settings_are_config_errors(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, **section)
    assert any(message in problem for problem in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        ({"custom": [{"name": "a", "kind": "missing_share"}]}, "needs a column"),
        ({"custom": [{"name": "a", "kind": "duplicates", "column": "carat"}]}, "takes no column"),
        ({"custom": [{"name": "a", "kind": "row_count"}]}, "min and/or max"),
        ({"custom": [{"name": "a", "kind": "value_range", "column": "carat", "min": 1}]}, "min and max"),
        (
            {"custom": [{"name": "a", "kind": "value_range", "column": "carat", "min": 2, "max": 1}]},
            "above max",
        ),
        ({"custom": [{"name": "a", "kind": "new_category", "column": "cut"}]}, "allowed values"),
        ({"custom": [{"name": "a", "kind": "constant", "column": "nope"}]}, "not features or predictions"),
        ({"custom": [{"name": "bad name!", "kind": "duplicates"}]}, "should match pattern"),
        ({"custom": [{"name": "a", "kind": "duplicates"}, {"name": "a", "kind": "duplicates"}]}, "unique"),
        ({"critical": ["everything"]}, "row_count"),
        ({"false_failure_rate": 0.9}, "less than 0.5"),
    ],
)
def test_bad_test_suites_are_config_errors_with_their_path(
    tmp_path: Path, tests: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, model=diamonds_model(tests=tests))
    assert any(message in problem and "tests" in problem for problem in raised.value.problems), (
        raised.value.problems
    )
