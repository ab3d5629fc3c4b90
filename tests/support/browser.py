"""Headless Chromium for tests: the rendered DOM of a page, or a screenshot of it.

Chromium runs with a private profile, no network services of its own, and a virtual-time budget
so script-driven pages (React, plotly, nivo) finish rendering before the DOM is dumped.
"""

from __future__ import annotations

import re
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


def chromium_binary() -> str:
    return find_binary("chromium", "chromium-browser", "google-chrome", env_var="CHROMIUM_BIN")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [chromium_binary(), *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def dump_dom(url: str, *, budget_ms: int = 20_000, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran (for at most `budget_ms` of virtual time)."""
    done = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout)
    if done.returncode != 0 or not done.stdout:
        raise AssertionError(f"chromium could not load {url}: {done.stderr[-2000:]}")
    return done.stdout


def screenshot(
    url: str, path: Path, *, width: int = 1400, height: int = 1500, budget_ms: int = 60_000
) -> Path:
    """A PNG of the page after `budget_ms` of virtual time (charts animate: give them time)."""
    done = _run(
        [
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={path}",
            url,
        ],
        timeout=180,
    )
    if not path.exists():
        raise AssertionError(f"chromium wrote no screenshot of {url}: {done.stderr[-2000:]}")
    return path


def visible_text(dom: str) -> str:
    """The text of a dumped DOM with tags removed and whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
