"""A stored report in a real browser: it renders under its Content-Security-Policy, and a script
smuggled into the page through report data does not run."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from monitor_service.config import ModelConfig, MonitorConfig, ReportsConfig
from monitor_service.reports import MemoryBackend, ReportStore, _render_page
from monitor_service.results import ReportPage
from tests.conftest import diamonds_model
from tests.support.browser import dump_dom, visible_text
from tests.support.reports import app_with_reports, calculation, production_rows
from tests.support.server import serve

pytestmark = pytest.mark.integration

ATTACK = '<script>document.title = "pwned"</script>'
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)


def _tampered(snapshot_json: str) -> ReportPage:
    """What a page looks like if escaping of report data ever fails: a script after the data."""
    page = _render_page(snapshot_json)
    data = SCRIPT.search(page.html)
    assert data is not None
    html = page.html[: data.end()] + ATTACK + page.html[data.end() :]
    return ReportPage(html, page.content_security_policy)  # the policy the page was rendered with


def _without_policy(snapshot_json: str) -> ReportPage:
    """The control: the same tampered page with neither the header nor the page's own <meta> policy."""
    page = _tampered(snapshot_json)
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.html)
    return ReportPage(html, "script-src 'unsafe-inline'")


def _store(renderer: object, snapshot: tuple[object, str]) -> ReportStore:
    store = ReportStore("diamonds", MemoryBackend(), ReportsConfig(), renderer=renderer)  # type: ignore[arg-type]
    result, text = snapshot
    store.put(replace(result, finished_at=1_764_450_000.0), text)  # type: ignore[type-var]
    return store


@pytest.fixture(scope="module")
def snapshot() -> tuple[object, str]:
    return calculation(ModelConfig.model_validate(diamonds_model()), production_rows(600), 1_764_450_000.0)


def test_stored_report_renders_in_chromium_under_its_policy(
    config: MonitorConfig, snapshot: tuple[object, str]
) -> None:
    with serve(app_with_reports(config, {"diamonds": _store(_render_page, snapshot)})) as base:
        dom = dump_dom(base + "/v1/models/diamonds/report")
    charts = dom.count('class="main-svg"')
    assert charts >= 9, f"only {charts} plotly charts rendered"  # one per drifted-or-not feature at least
    text = visible_text(dom)
    assert text.startswith("Metrics Tests")  # the test suite has its own tab
    assert "Drift verdict of model diamonds no drift" in text  # tested mode: our verdict on top
    assert "missing_share:carat" in dom  # the tests' results are in the page's data


@pytest.mark.parametrize(("renderer", "executed"), [(_tampered, False), (_without_policy, True)])
def test_script_injected_into_a_report_runs_only_without_the_policy(
    config: MonitorConfig, snapshot: tuple[object, str], renderer: object, executed: bool, tmp_path: Path
) -> None:
    del tmp_path
    with serve(app_with_reports(config, {"diamonds": _store(renderer, snapshot)})) as base:
        dom = dump_dom(base + "/v1/models/diamonds/report")
    assert ("<title>pwned</title>" in dom) is executed
    assert (dom.count('class="main-svg"') > 0) is True  # the report itself still renders
