"""check-config (and start-up) verify the quality settings against the reference, with paths and lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from monitor_service.cli import main
from monitor_service.config import load_config
from monitor_service.errors import ConfigError
from monitor_service.service import MonitorService
from tests.conftest import DIAMONDS, diamonds_model
from tests.quality_support import binary_frame, binary_model, cut_frame, multiclass_model


def _write(tmp_path: Path, models: list[dict[str, Any]]) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check-config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _binary_reference(tmp_path: Path, **changes: Any) -> Path:
    reference = tmp_path / "reference.csv"
    binary_frame("reference", boolean=changes.pop("boolean", False)).assign(**changes).to_csv(
        reference, index=False
    )
    return reference


def test_boolean_target_finds_the_default_positive_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, [binary_model(_binary_reference(tmp_path, boolean=True))])
    code, out, err = _check(path, capsys)
    assert code == 0, err
    assert "model quality (binary, positive class 'true'): accuracy, precision, recall, f1, roc_auc" in out
    assert "estimates without labels (CBPE)" in out


@pytest.mark.parametrize("spelling", ["TRUE", "True", "yes", True, 1])
def test_positive_label_in_any_boolean_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spelling: Any
) -> None:
    model = binary_model(_binary_reference(tmp_path, boolean=True))
    model["columns"]["positive_label"] = spelling
    code, out, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 0, err
    assert "positive class 'true'" in out


def test_unknown_positive_label_is_an_error_with_path_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = binary_model(_binary_reference(tmp_path))
    model["columns"]["positive_label"] = "expensive"
    path = _write(tmp_path, [model])
    code, _, err = _check(path, capsys)
    assert code == 2
    line = _line(path, "positive_label:")
    assert (
        f"models[0].columns.positive_label (line {line}): 'expensive' is not among the classes of "
        "expensive in the reference ('0', '1')"
    ) in err


def test_model_quality_without_prediction_column_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = diamonds_model(metrics=["data_drift", "model_quality"])
    del model["columns"]["prediction"]
    path = _write(tmp_path, [model])
    code, _, err = _check(path, capsys)
    assert code == 2
    line = _line(path, "- data_drift")  # the line of the list, as YAML places it
    assert f"models[0].metrics (line {line}): Value error, model_quality needs columns.prediction" in err


def test_model_quality_without_target_column_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = diamonds_model(metrics=["model_quality"])
    del model["columns"]["target"]
    code, _, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 2
    assert "model_quality needs columns.target" in err


def test_default_metrics_without_target_turn_quality_off_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = diamonds_model()
    del model["columns"]["target"]
    code, out, _ = _check(_write(tmp_path, [model]), capsys)
    assert code == 0
    assert "model quality off (no target column)" in out


def test_quality_metrics_must_fit_the_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = diamonds_model(quality={"metrics": ["mae", "accuracy"]})
    code, _, err = _check(_write(tmp_path, [wrong]), capsys)
    assert code == 2
    assert "models[0].quality" in err and "['accuracy'] are classification metrics" in err
    model = binary_model(_binary_reference(tmp_path), quality={"metrics": ["f1_macro"]})
    code, _, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 2
    assert "models[0].quality.metrics" in err and "are not binary metrics" in err


def test_roc_auc_needs_a_probability_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = binary_model(_binary_reference(tmp_path), quality={"metrics": ["accuracy", "roc_auc"]})
    del model["columns"]["probability"]
    code, _, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 2
    assert "roc_auc needs columns.probability" in err


def test_probabilities_outside_zero_one_are_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = binary_frame("reference")
    frame["probability"] = frame["probability"] * 100  # percent instead of a probability
    reference = tmp_path / "reference.csv"
    frame.to_csv(reference, index=False)
    path = _write(tmp_path, [binary_model(reference)])
    code, _, err = _check(path, capsys)
    assert code == 2
    assert f"models[0].columns.probability (line {_line(path, 'probability: probability')})" in err
    assert "outside [0, 1]" in err


def test_probability_column_on_a_multiclass_target_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = cut_frame("reference").assign(probability=0.5)
    reference = tmp_path / "reference.csv"
    frame.to_csv(reference, index=False)
    model = multiclass_model(reference)
    model["columns"]["probability"] = "probability"
    code, _, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 2
    assert "probability is for binary classification; the reference has 5 classes" in err


def test_multiclass_summary_and_positive_label_misuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "reference.csv"
    cut_frame("reference").to_csv(reference, index=False)
    code, out, err = _check(_write(tmp_path, [multiclass_model(reference)]), capsys)
    assert code == 0, err
    assert "model quality (multiclass, 5 classes): accuracy, precision_macro" in out
    model = multiclass_model(reference)
    model["columns"]["positive_label"] = "Ideal"
    code, _, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 2
    assert "positive_label is for binary classification; the target has 5 classes" in err


def test_configured_classes_are_checked_against_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "reference.csv"
    cut_frame("reference").to_csv(reference, index=False)
    model = multiclass_model(
        reference, quality={"classes": ["Ideal", "Premium", "Good", "Very Good", "Superb"]}
    )
    path = _write(tmp_path, [model])
    code, _, err = _check(path, capsys)
    assert code == 2
    assert "models[0].quality.classes" in err
    assert "holds classes that are not configured: ['Fair']" in err


def test_in_sample_reference_predictions_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(DIAMONDS / "reference.csv")
    frame["prediction"] = frame["price"] + np.random.default_rng(0).normal(0, 5, len(frame))  # memorised
    reference = tmp_path / "reference.csv"
    frame.to_csv(reference, index=False)
    path = _write(tmp_path, [diamonds_model(reference=str(reference))])
    code, _, err = _check(path, capsys)
    assert code == 0
    assert "the reference's own quality is near perfect (r2 1" in err
    assert "out-of-fold or holdout" in err
    assert f"models[0].reference (line {_line(path, 'reference:')})" in err


def test_holdout_reference_predictions_give_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _check(_write(tmp_path, [diamonds_model()]), capsys)
    assert code == 0
    assert "warning" not in err
    assert "model quality (regression): mae, rmse, mape, r2; baseline from reference" in out


def test_baseline_for_a_metric_not_computed_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = diamonds_model(quality={"metrics": ["mae"], "baseline": {"rmse": 100.0}})
    code, _, err = _check(_write(tmp_path, [model]), capsys)
    assert code == 2
    assert "models[0].quality.baseline" in err and "['rmse'] are not among the metrics computed" in err


def test_start_up_refuses_what_check_config_refuses(tmp_path: Path) -> None:
    model = binary_model(_binary_reference(tmp_path))
    model["columns"]["positive_label"] = "yes please"
    config = load_config(_write(tmp_path, [model]), environ={})
    with pytest.raises(ConfigError) as raised:
        MonitorService.build(config)
    assert any("positive_label" in problem for problem in raised.value.problems)
