"""Evidently's report page, rendered so that no value from the data can run as script.

Evidently embeds the report's data (category values, labels, column names) with `json.dumps`
inside a `<script>` block, so a value holding `</script><script>...` ends the block and runs as
code in the page an analyst opens. This module renders the same page from the snapshot's widgets
with the data escaped for a script context (`<`, `>`, `&` and the JS line separators as `\\uXXXX`,
which JSON and JavaScript read back as the same characters), and returns a Content-Security-Policy
that allows exactly the page's own four scripts by hash: even a value that slipped past the
escaping could not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from functools import cache
from typing import Any

from evidently.legacy.model.dashboard import DashboardInfo
from evidently.legacy.model.widget import AdditionalGraphInfo, BaseWidgetInfo
from evidently.legacy.renderers.html_widgets import group_widget
from evidently.legacy.utils import NumpyEncoder
from evidently.legacy.utils.dashboard import STATIC_PATH

from monitor_service.results import ReportPage

# Characters that can end or change a <script> block, or end a JS string, when they appear in JSON.
_SCRIPT_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_safe_json(value: Any) -> str:
    """JSON text that can sit inside a <script> element without ending it."""
    return json.dumps(value, cls=NumpyEncoder).translate(_SCRIPT_UNSAFE)


@cache
def _library() -> str:
    with open(os.path.join(STATIC_PATH, "index.js"), encoding="utf-8") as handle:
        library = handle.read()
    if "</script" in library.lower():  # cannot be inlined safely; Evidently never ships that
        raise RuntimeError("Evidently's index.js contains '</script' and cannot be inlined")
    return library


@cache
def _font() -> str:
    with open(os.path.join(STATIC_PATH, "material-ui-icons.woff2"), "rb") as handle:
        return base64.b64encode(handle.read()).decode()


@cache
def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _policy(scripts: list[str]) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            "script-src " + " ".join(_hash(s) for s in scripts),
            "style-src 'unsafe-inline'",
            "img-src data:",
            "font-src data:",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _dashboard_data(snapshot: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two objects Evidently's page script reads: the dashboard and its detail graphs
    (as `evidently.core.metric_types.render_widgets` builds them; a test keeps the two in step)."""
    model = snapshot.to_snapshot_model()
    widgets = [group_widget(title="", widgets=model.widgets), *model.tests_widgets]
    graphs: dict[str, Any] = {}
    for widget in widgets:
        for graph in widget.get_additional_graphs():
            info = graph.params if isinstance(graph, AdditionalGraphInfo) else graph
            graphs[str(graph.id)] = info.dict() if isinstance(info, BaseWidgetInfo) else info
    dashboard = DashboardInfo(name="Report", widgets=widgets).dict()
    for widget in dashboard["widgets"]:
        widget.pop("additionalGraphs", None)
    return dashboard, graphs


def render_page(snapshot: Any) -> ReportPage:
    """The report page of an Evidently snapshot, with its data escaped and its scripts pinned."""
    info, graphs = _dashboard_data(snapshot)
    dashboard = "metric_" + uuid.uuid4().hex
    scripts = [
        f"\n    var {dashboard} = {script_safe_json(info)};"
        f"\n    var additional_graphs_{dashboard} = {script_safe_json(graphs)};\n",
        "var global = globalThis",
        _library(),
        f"\n    window.drawDashboard({dashboard},\n"
        f"        new Map(Object.entries(additional_graphs_{dashboard})),\n"
        f'        "root_{dashboard}"\n    );\n',
    ]
    data_script, global_script, library_script, draw_script = scripts
    policy = _policy(scripts)
    html = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<style>
@font-face {{ font-family: 'Material Icons'; font-style: normal; font-weight: 400;
  src: url(data:font/ttf;base64,{_font()}) format('woff2'); }}
.center-align {{ text-align: center; }}
.material-icons {{ font-family: 'Material Icons'; font-weight: normal; font-style: normal;
  font-size: 24px; line-height: 1; letter-spacing: normal; text-transform: none;
  display: inline-block; white-space: nowrap; word-wrap: normal; direction: ltr;
  text-rendering: optimizeLegibility; -webkit-font-smoothing: antialiased; }}
</style>
<script>{data_script}</script>
</head>
<body>
<div id="root_{dashboard}"></div>
<script>{global_script}</script>
<script>{library_script}</script>
<script>{draw_script}</script>
</body>
</html>
"""
    return ReportPage(html, policy)
