"""The command line, called in process (`main(argv)`), plus one run through `python -m`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
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
    model["drift"] = {"mode": "legacy", "per_column": {"carat": {"stattest": "no_such_test"}}}
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "models[0].reference: column 'depth' is missing" in err
    assert "column 'prediction' is missing" in err


def test_check_config_reports_an_unknown_stattest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = diamonds_model()
    model["drift"] = {"mode": "legacy", "per_column": {"carat": {"stattest": "no_such_test"}}}
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "models[0].drift.per_column.carat.stattest: unknown stat test 'no_such_test'" in err


def test_check_config_names_an_unknown_stattest_once_with_the_closest_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = diamonds_model(drift={"mode": "legacy", "stattest": "wasserstien"})
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("wasserstien") == 1, err
    expected = "models[0].drift.stattest: unknown stat test 'wasserstien'; did you mean 'wasserstein'?"
    assert expected in err
    assert "jensenshannon" not in err  # no list of every test


def test_check_config_names_a_stattest_of_the_wrong_type_once_with_its_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # categorical only: wrong for 7 columns
    model = diamonds_model(drift={"mode": "legacy", "stattest": "chisquare"})
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "chisquare" in line]
    assert line.startswith("  models[0].drift.stattest: stat test 'chisquare'")
    assert "'carat'" in line and "'prediction'" in line and "'cut'" not in line


def test_check_config_reports_reference_problems_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (ROOT / "datasets" / "diamonds" / "reference.csv").read_text().splitlines()[:6]
    lines[3] = "heavy" + lines[3][lines[3].index(",") :]
    reference = tmp_path / "ref.csv"
    reference.write_text("\n".join(lines) + "\n")
    model = diamonds_model(reference=str(reference))
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == EXIT_CONFIG
    expected = "column 'carat' should be numerical; 1 value(s) are not, at line 4 (first 'heavy')"
    assert expected in capsys.readouterr().err


def test_check_config_summary_counts_configured_and_file_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(ROOT / "datasets" / "diamonds" / "reference.csv").head(50)
    frame["notes"] = "x"
    frame["batch"] = 1
    reference = tmp_path / "ref.csv"
    frame.to_csv(reference, index=False)
    model = diamonds_model(reference=str(reference))
    assert main(["check-config", str(write_config(tmp_path / "c.yaml", [model]))]) == 0
    assert (
        "diamonds: regression, reference 50 rows; 12 columns configured (11 compared), "
        "13 in the file, not used: 'notes', 'batch'"
    ) in capsys.readouterr().out


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
