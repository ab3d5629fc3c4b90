"""Evidently UI fed for real: `evidently ui` on loopback, the exporter pushes stored snapshots, and
headless Chromium sees the project and its runs on the rendered pages."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from monitor_service.config import EvidentlyUIExport, ModelConfig
from monitor_service.exporters import ExportDispatcher
from monitor_service.exporters.evidently_ui import EvidentlyUIExporter
from monitor_service.results import CalculationResult
from tests.exporters.conftest import start_evidently_ui
from tests.support.browser import dump_dom, screenshot, visible_text
from tests.support.processes import REPO_ROOT, RunningProcess, poll_until

pytestmark = pytest.mark.integration

DOCS_IMAGE = REPO_ROOT / "docs" / "images" / "evidently-ui.png"


def _projects(base_url: str) -> list[dict[str, Any]]:
    response = requests.get(base_url + "/api/projects", timeout=10)
    response.raise_for_status()
    projects: list[dict[str, Any]] = response.json()
    return projects


def _runs_on_page(base_url: str, project_id: str) -> tuple[str, int]:
    """The visible text of the project's Reports page and the number of runs listed on it."""
    text = visible_text(dump_dom(f"{base_url}/projects/{project_id}/reports"))
    return text, len(re.findall(r"\bView Download\b", text))


def _push_all(exporter: EvidentlyUIExporter, calculations: list[tuple[CalculationResult, str]]) -> None:
    dispatcher = ExportDispatcher([exporter])
    for result, snapshot in calculations:
        assert dispatcher.submit("diamonds", result, snapshot)
    assert dispatcher.drain(300)
    stats = dispatcher.stats[exporter.name]
    dispatcher.close()
    assert (stats.pushed, stats.failed, stats.last_error) == (len(calculations), 0, None)


def test_exporter_feeds_a_remote_evidently_ui_one_project_per_model(
    evidently_ui: tuple[RunningProcess, Path],
    diamonds: ModelConfig,
    calculations: list[tuple[CalculationResult, str]],
    tmp_path: Path,
) -> None:
    ui, _ = evidently_ui
    settings = EvidentlyUIExport(url=ui.base_url, project_prefix="drift-monitor ")
    _push_all(EvidentlyUIExporter(settings, [diamonds]), calculations[:3])
    # A second monitor (or a restart) finds the project by name instead of creating another.
    _push_all(EvidentlyUIExporter(settings, [diamonds]), calculations[3:])
    projects = [p for p in _projects(ui.base_url) if p["name"] == "drift-monitor diamonds"]
    assert len(projects) == 1
    project_id = projects[0]["id"]

    text, runs = _runs_on_page(ui.base_url, project_id)
    assert "drift-monitor diamonds" in text
    assert runs == 4
    assert "1\u20134 of 4" in text  # the table's pager: 1-4 of 4
    assert text.count("no-drift") == 2  # the verdict as tags: two calm windows, two drifted
    assert len(re.findall(r"(?<!no-)\bdrift\b(?!-)", text)) >= 2

    dashboard = visible_text(dump_dom(f"{ui.base_url}/projects/{project_id}", budget_ms=30_000))
    for title in ("Share of drifted feature columns over time", "Drift score per column", "Duplicated rows"):
        assert title in dashboard, title
    image = screenshot(f"{ui.base_url}/projects/{project_id}", tmp_path / "evidently-ui.png")
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("DRIFT_MONITOR_UPDATE_DOCS_IMAGES"):
        shutil.copyfile(image, DOCS_IMAGE)


def test_exporter_writes_a_local_workspace_that_evidently_ui_serves(
    tmp_path: Path, diamonds: ModelConfig, calculations: list[tuple[CalculationResult, str]]
) -> None:
    workspace = tmp_path / "workspace"
    exporter = EvidentlyUIExporter(EvidentlyUIExport(workspace=workspace), [diamonds])
    _push_all(exporter, calculations[:2])
    ui = start_evidently_ui(workspace, tmp_path / "ui.log")
    try:
        (project,) = _projects(ui.base_url)
        assert project["name"] == "diamonds"
        _, runs = _runs_on_page(ui.base_url, project["id"])
        assert runs == 2
        # Runs written while the UI serves the directory show up too (it watches the workspace).
        _push_all(exporter, calculations[2:3])
        poll_until(
            lambda: _runs_on_page(ui.base_url, project["id"])[1] == 3,
            timeout=120,
            interval=2,
            message="the third run in Evidently UI",
        )
    finally:
        ui.stop()


def test_exporter_failure_is_counted_and_logged_once_while_it_lasts(
    diamonds: ModelConfig, calculations: list[tuple[CalculationResult, str]], caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.processes import free_port

    nowhere = EvidentlyUIExport(url=f"http://127.0.0.1:{free_port()}")
    dispatcher = ExportDispatcher([EvidentlyUIExporter(nowhere, [diamonds])])
    with caplog.at_level("ERROR", logger="monitor_service.exporters"):
        for result, snapshot in calculations:
            assert dispatcher.submit("diamonds", result, snapshot)
        assert dispatcher.drain(120)
    stats = dispatcher.stats["evidently_ui"]
    dispatcher.close()
    assert (stats.pushed, stats.failed) == (0, len(calculations))
    assert stats.last_error is not None and "Connection refused" in stats.last_error
    assert len([r for r in caplog.records if "exporter evidently_ui failed" in r.getMessage()]) == 1
