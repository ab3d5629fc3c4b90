"""Headless Chromium for tests: the rendered DOM of a page, optionally with the network cut off.

``offline=True`` leaves only loopback reachable: every host name resolves to nothing
(``--host-resolver-rules``) and everything that is not loopback goes to a proxy where nothing
listens (127.0.0.1:9, the discard port; Chromium never proxies loopback). A page that needs a CDN
then renders without it, as in an air-gapped cluster. ``test_chromium_offline_blocks_cdn`` proves
the flags do block.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
OFFLINE_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
)


def chromium_binary() -> str:
    """Debian's `chromium` (or $CHROMIUM_BIN); fails with the install command when absent."""
    path = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: apt-get install -y --no-install-recommends chromium"
    return path


def dump_dom(url: str, profile_dir: Path, *, offline: bool = True, budget_ms: int = 15000) -> str:
    """The DOM after `budget_ms` of virtual time (scripts run, fetches answered) as HTML text.

    Chromium runs in its own session so that a hung browser and its helper processes are killed by
    their process group id, never by name.
    """
    args = [
        chromium_binary(),
        *BASE_FLAGS,
        *(OFFLINE_FLAGS if offline else ()),
        f"--user-data-dir={profile_dir}",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, err[-3000:]
    return out
