"""Drift settings: validated against what each number means, legacy keys warned about in tested
mode, references too small for the tests warned about in check-config and at start."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from monitor_service import engine
from monitor_service.app import create_app
from monitor_service.config import ModelConfig, load_config, parse_config
from monitor_service.drift_warnings import drift_warnings, smallest_shift
from monitor_service.errors import ConfigError
from tests.conftest import DIAMONDS, ROOT, diamonds_model, write_config


def _problems(drift: dict[str, Any], tmp_path: Path) -> list[str]:
    path = write_config(tmp_path / "c.yaml", [diamonds_model(drift=drift)])
    with pytest.raises(ConfigError) as caught:
        parse_config(path.read_text(), str(path), tmp_path, environ={})
    return caught.value.problems


def _model(**drift: Any) -> ModelConfig:
    return ModelConfig.model_validate(diamonds_model(drift=drift))


def test_drift_defaults_are_the_tested_mode() -> None:
    drift = _model().drift
    assert (drift.mode, drift.alpha, drift.correction) == ("tested", 0.05, "holm")
    assert (drift.effect.numerical, drift.effect.categorical, drift.effect.clip_to_reference) == (
        "wasserstein",
        "jensenshannon",
        True,
    )
    assert (drift.min_effect.wasserstein, drift.min_effect.jensenshannon, drift.min_effect.psi) == (
        0.1,
        0.05,
        0.1,
    )
    assert (drift.classifier.enabled, drift.classifier.alpha_share, drift.classifier.min_auc) == (
        True,
        0.5,
        0.62,
    )
    assert (drift.confirm, drift.clear, drift.turnover) == (3, 3, True)


@pytest.mark.parametrize(
    ("drift", "where"),
    [
        ({"alpha": 1.5}, "models[0].drift.alpha"),
        ({"alpha": 0}, "models[0].drift.alpha"),
        ({"correction": "bonferroni"}, "models[0].drift.correction"),
        ({"min_effect": {"jensenshannon": 0.9}}, "models[0].drift.min_effect.jensenshannon"),
        ({"min_effect": {"wasserstein": -1}}, "models[0].drift.min_effect.wasserstein"),
        (
            {"per_column": {"cut": {"effect": "jensenshannon", "min_effect": 2}}},
            "models[0].drift.per_column.cut",
        ),
        ({"classifier": {"min_auc": 0.4}}, "models[0].drift.classifier.min_auc"),
        ({"classifier": {"alpha_share": 1}}, "models[0].drift.classifier.alpha_share"),
        ({"confirm": 0}, "models[0].drift.confirm"),
        ({"mode": "strict"}, "models[0].drift.mode"),
    ],
)
def test_drift_numbers_are_checked_against_their_meaning(
    drift: dict[str, Any], where: str, tmp_path: Path
) -> None:
    problems = _problems(drift, tmp_path)
    assert any(p.startswith(where) for p in problems), problems


@pytest.mark.parametrize(
    ("per_column", "message"),
    [
        ({"carat": {"test": "wasserstein"}}, "wasserstein is a distance, not a test returning a p-value"),
        ({"cut": {"test": "ks"}}, "isn't applicable to feature of type cat"),
        ({"cut": {"test": "g_test"}}, "g_test is refused"),
        ({"carat": {"test": "no_such_test"}}, "No stattest found of name no_such_test"),
        ({"cut": {"min_effect": 0.9}}, "can never be reached by jensenshannon"),
    ],
)
def test_tested_mode_checks_each_test_against_its_meaning(per_column: dict[str, Any], message: str) -> None:
    problems = engine.check_config(_model(per_column=per_column), "models[0]")
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        (
            {"per_column": {"carat": {"stattest": "ks", "threshold": 5}}},
            "threshold 5.0 for ks is not a p-value",
        ),
        ({"per_column": {"cut": {"stattest": "jensenshannon", "threshold": 0.9}}}, "can never be reached"),
    ],
)
def test_legacy_mode_checks_thresholds_against_the_test(drift: dict[str, Any], message: str) -> None:
    problems = engine.check_config(_model(mode="legacy", **drift), "models[0]")
    assert problems and all(message in p for p in problems), problems


def test_legacy_mode_accepts_sensible_thresholds() -> None:
    drift = {
        "stattest": "psi",
        "threshold": 0.2,
        "per_column": {"carat": {"stattest": "ks", "threshold": 0.01}},
    }
    assert engine.check_config(_model(mode="legacy", **drift), "models[0]") == []


def _reference() -> pd.DataFrame:
    return pd.read_csv(DIAMONDS / "reference.csv")


def test_tested_mode_warns_about_legacy_keys_and_moving_reference() -> None:
    model = ModelConfig.model_validate(
        diamonds_model(
            moving_reference=True,
            drift={"share": 0.3, "threshold": 0.1, "per_column": {"carat": {"stattest": "ks"}}},
        )
    )
    warnings = drift_warnings(model, _reference(), "models[0]")
    assert len(warnings) == 2, warnings
    assert (
        "drift.share, drift.threshold, drift.per_column.carat.stattest only apply with drift.mode: legacy"
        in (warnings[0])
    )
    assert warnings[1].startswith("models[0].moving_reference is ignored in tested mode")
    assert drift_warnings(_model(), _reference(), "models[0]") == []


def test_legacy_mode_warns_about_one_threshold_read_two_ways() -> None:
    warnings = drift_warnings(_model(mode="legacy", threshold=0.05), _reference(), "models[0]")
    assert len(warnings) == 1 and "read as a p-value for ks/chisquare/z and as a distance" in warnings[0]


def test_small_reference_and_empty_columns_are_warned_about() -> None:
    reference = _reference().head(300).assign(depth=float("nan"))
    warnings = drift_warnings(_model(), reference, "models[0]")
    assert any(w.startswith("models[0].reference: 300 rows.") for w in warnings), warnings
    assert any(
        "column 'depth' has no values; it cannot be tested and counts as drifted" in w for w in warnings
    )


def test_smallest_shift_shrinks_with_the_reference() -> None:
    alpha = 0.025 / 22
    assert (
        smallest_shift(300, 5000, alpha)
        > smallest_shift(3000, 5000, alpha)
        > smallest_shift(30000, 5000, alpha)
    )
    # however large the window, a 300-row reference never sees less than about 0.28 standard deviations
    assert smallest_shift(300, 10**9, alpha) > 0.25


def test_anderson_with_holm_over_many_tests_is_warned_about(tmp_path: Path) -> None:
    """scipy's Anderson-Darling p-values stop at 0.001: Holm over N tests needs 0.001 N <= alpha."""
    many = [f"n{i}" for i in range(30)]
    reference = pd.DataFrame({name: range(2000) for name in many})
    model = ModelConfig.model_validate(
        {
            "name": "wide",
            "task": "regression",
            "reference": str(tmp_path / "r.csv"),
            "columns": {"numerical": many},
            "metrics": ["data_drift"],
            "drift": {"per_column": {"n0": {"test": "anderson"}}},
        }
    )
    warnings = drift_warnings(model, reference, "models[0]")
    assert len(warnings) == 1 and "anderson (columns n0) returns p-values of at least 0.001" in warnings[0]
    bh = model.model_copy(update={"drift": model.drift.model_copy(update={"correction": "bh"})})
    assert drift_warnings(bh, reference, "models[0]") == []


def test_goodness_of_fit_chisquare_is_warned_about() -> None:
    warnings = drift_warnings(_model(per_column={"cut": {"test": "chisquare"}}), _reference(), "models[0]")
    assert len(warnings) == 1 and "chisquare (columns cut) is Evidently's goodness-of-fit test" in warnings[0]


def test_check_config_prints_warnings_and_still_passes(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    _reference().head(500).to_csv(small, index=False)
    path = write_config(tmp_path / "c.yaml", [diamonds_model(reference=str(small), drift={"share": 0.4})])
    done = subprocess.run(
        [sys.executable, "-m", "monitor_service", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "warning: models[0]: drift.share only apply with drift.mode: legacy" in done.stderr
    assert "warning: models[0].reference: 500 rows." in done.stderr


def test_start_logs_the_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(
        write_config(tmp_path / "c.yaml", [diamonds_model(moving_reference=True)]), environ={}
    )
    with caplog.at_level(logging.WARNING), TestClient(create_app(config, start_scheduler=False)):
        pass
    assert any("moving_reference is ignored in tested mode" in r.getMessage() for r in caplog.records)
