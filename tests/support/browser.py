"""Headless Chromium for tests: the rendered DOM of a page, or a screenshot of it.

Chromium runs with a private profile, no network services of its own, and a virtual-time budget so
script-driven pages (React, plotly, nivo) finish rendering before the DOM is dumped. It runs in its
own session, so a hung browser and its helpers are killed by process group id, never by name.

``offline=True`` leaves only loopback reachable: every host name resolves to nothing
(``--host-resolver-rules``) and everything that is not loopback goes to a proxy where nothing
listens (127.0.0.1:9, the discard port; Chromium never proxies loopback). A page that needs a CDN
then renders without it, as in an air-gapped cluster (tests/e2e/test_docs_offline.py proves the
flags do block).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import find_binary

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)
OFFLINE_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
)


def chromium_binary() -> str:
    return find_binary("chromium", "chromium-browser", "google-chrome", env_var="CHROMIUM_BIN")


def _run(args: list[str], timeout: float, offline: bool) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            chromium_binary(),
            *_FLAGS,
            *(OFFLINE_FLAGS if offline else ()),
            f"--user-data-dir={profile}",
            *args,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        return process.returncode, out, err


def dump_dom(url: str, *, budget_ms: int = 20_000, timeout: float = 120, offline: bool = False) -> str:
    """The DOM after the page's scripts ran (for at most `budget_ms` of virtual time)."""
    code, out, err = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout, offline)
    if code != 0 or not out:
        raise AssertionError(f"chromium could not load {url}: {err[-2000:]}")
    return out


def screenshot(
    url: str, path: Path, *, width: int = 1400, height: int = 1500, budget_ms: int = 60_000
) -> Path:
    """A PNG of the page after `budget_ms` of virtual time (charts animate: give them time)."""
    _, _, err = _run(
        [
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={path}",
            url,
        ],
        timeout=180,
        offline=False,
    )
    if not path.exists():
        raise AssertionError(f"chromium wrote no screenshot of {url}: {err[-2000:]}")
    return path


def visible_text(dom: str) -> str:
    """The text of a dumped DOM with tags removed and whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
