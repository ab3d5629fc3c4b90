"""The Content-Security-Policy of a report page: exactly the page's own scripts may run.

Evidently's page is one file of inline scripts: the report's data (first), its JavaScript bundle
and a last call that draws the dashboard. The policy allows them by SHA-256 hash, taken only where
they are what they should be: the first script when it is a data assignment, the last when it is
exactly the drawing call, and the others when they are byte for byte the scripts of a page Evidently
renders from no data at all. A script smuggled in through report data (a category such as
`</script><script>...`) is none of these, so the browser refuses to run it even if escaping failed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re

SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)
DATA = re.compile(r"^\s*var (metric_[0-9a-f]{32}) = ")
DRAW_CALL = re.compile(
    r"^\s*window\.drawDashboard\((metric_[0-9a-f]{32}),\s*new Map\(Object\.entries\("
    r'additional_graphs_\1\)\),\s*"root_\1"\s*\);\s*$'
)
OTHER_DIRECTIVES = (
    "default-src 'none'",
    "style-src 'unsafe-inline'",  # MUI and plotly set styles at run time; styles cannot run code
    "img-src data: blob:",
    "font-src data:",
    "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)


def script_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def report_policy(html: str, static: frozenset[str] | None = None) -> str:
    """The CSP header value for one rendered report page."""
    static = trusted_static_hashes() if static is None else static
    scripts = SCRIPT.findall(html)
    allowed: list[str] = []
    if scripts and DATA.match(scripts[0]):
        allowed.append(script_hash(scripts[0]))
    for source in scripts[1:-1]:
        digest = script_hash(source)
        if digest in static and digest not in allowed:
            allowed.append(digest)
    if len(scripts) > 1 and DRAW_CALL.match(scripts[-1]):
        allowed.append(script_hash(scripts[-1]))
    script_src = "script-src " + (" ".join(allowed) if allowed else "'none'")
    return "; ".join((OTHER_DIRECTIVES[0], script_src, *OTHER_DIRECTIVES[1:]))


def static_hashes(trusted_html: str) -> frozenset[str]:
    """Hashes of the scripts between the data and the drawing call of a page rendered from no data."""
    return frozenset(script_hash(s) for s in SCRIPT.findall(trusted_html)[1:-1])


@functools.cache
def trusted_static_hashes() -> frozenset[str]:
    from monitor_service.engine.snapshot import empty_report_html

    return static_hashes(empty_report_html())
