"""The command line, called in process (`main(argv)`), plus one run through `python -m`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor_service.cli import EXIT_CONFIG, main
from tests.conftest import ROOT, diamonds_model, write_config


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "config" / "example.yaml")]) == 0
    assert "diamonds: regression, reference 10000 rows" in capsys.readouterr().out


def test_check_config_exits_2_listing_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_reference = tmp_path / "ref.csv"
    bad_reference.write_text("carat,cut\n1.0,Ideal\n")
    model = diamonds_model(reference=str(bad_reference))
    model["drift"] = {"per_column": {"carat": {"stattest": "no_such_test"}}}
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "models[0].reference: column 'depth' is missing" in err
    assert "column 'prediction' is missing" in err


def test_check_config_reports_an_unknown_stattest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = diamonds_model()
    model["drift"] = {"per_column": {"carat": {"stattest": "no_such_test"}}}
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "models[0].drift (column 'carat')" in err
    assert "no_such_test" in err


def test_check_config_creates_no_directories(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", [diamonds_model()])
    path.write_text(path.read_text() + "storage:\n  data_dir: state\n")
    assert main(["check-config", str(path)]) == 0
    assert not (tmp_path / "state").exists()


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor_service", "check-config", str(ROOT / "config" / "example.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(": OK")
