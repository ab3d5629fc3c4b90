"""/docs and /redoc of the real server in headless Chromium with every host but loopback unreachable.

The monitor runs as a subprocess on 127.0.0.1; Chromium resolves no host name and has no route out
(tests/support/browser.py), like a browser in an air-gapped cluster. The token case runs against a
small real server whose /openapi.json needs a bearer token (tests/support/docs_token_app.py), the
way the monitor's read token will guard it: the token travels in the URL fragment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import diamonds_model, write_config
from tests.support.browser import dump_dom
from tests.support.docs_token_app import OPERATION_SUMMARY
from tests.support.processes import (
    REPO_ROOT,
    RunningProcess,
    free_port,
    start_monitor,
    start_process,
    wait_for_http,
)

pytestmark = pytest.mark.integration

SUMMARIES = ("Send inference rows", "Send ground-truth labels", "Latest results", "Replace the reference")
TOKEN = "docs-test-token-0123456789"


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProcess]:
    tmp = tmp_path_factory.mktemp("docs")
    config = write_config(tmp / "monitor.yaml", [diamonds_model()], executor="thread")
    process = start_monitor(config, free_port(), tmp / "monitor.log")
    yield process
    assert process.stop() == 0, process.log_tail()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProcess]:
    tmp = tmp_path_factory.mktemp("docs-token")
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "tests.support.docs_token_app:create", "--factory"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = {**os.environ, "DOCS_TEST_TOKEN": TOKEN}
    process = start_process("docs-token-app", args, tmp / "server.log", env=env, cwd=REPO_ROOT)
    process.base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(process.base_url + "/docs", process=process)
        yield process
    finally:
        process.stop()


def test_chromium_offline_blocks_cdn(tmp_path: Path) -> None:
    """The control: with the offline flags a CDN script does not load (so the tests below mean it)."""
    page = tmp_path / "cdn.html"
    page.write_text(
        "<!doctype html><title>pending</title>"
        '<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js" '
        "onload=\"document.title='loaded'\" onerror=\"document.title='blocked'\"></script>"
    )
    dom = dump_dom(page.as_uri(), budget_ms=5000, offline=True)
    assert "<title>blocked</title>" in dom


def test_docs_swagger_ui_lists_operations_offline(monitor: RunningProcess) -> None:
    dom = dump_dom(monitor.base_url + "/docs", budget_ms=15000, offline=True)
    assert 'class="swagger-ui' in dom, dom[-2000:]
    for summary in SUMMARIES:
        assert f'opblock-summary-description">{summary}<' in dom, summary
    assert 'id="docs-message" hidden' in dom  # no error shown


def test_docs_redoc_lists_operations_offline(monitor: RunningProcess) -> None:
    dom = dump_dom(monitor.base_url + "/redoc", budget_ms=15000, offline=True)
    for summary in SUMMARIES:
        assert f">{summary}<" in dom, summary
    assert 'id="docs-message" hidden' in dom


def test_docs_with_token_in_fragment_lists_operations(token_server: RunningProcess) -> None:
    dom = dump_dom(f"{token_server.base_url}/docs#token={TOKEN}", budget_ms=15000, offline=True)
    assert f'opblock-summary-description">{OPERATION_SUMMARY}<' in dom, dom[-2000:]


def test_docs_without_token_says_how_to_pass_one(token_server: RunningProcess) -> None:
    for url in (f"{token_server.base_url}/docs", f"{token_server.base_url}/redoc#token=wrong"):
        dom = dump_dom(url, budget_ms=15000, offline=True)
        assert OPERATION_SUMMARY not in dom
        assert "needs a token to show its API description" in dom
        assert "#token=&lt;your token&gt;" in dom
