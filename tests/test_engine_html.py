"""The escaped report page carries exactly Evidently's data, and no data can end a script block."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from monitor_service.engine.html import render_page, script_safe_json

HOSTILE = "</script><script>alert(1)</script> & <!-- \u2028"


def _snapshot() -> object:
    frame = pd.DataFrame({"cut": ["Ideal", "Good", HOSTILE] * 20, "carat": [0.3, 0.5, 0.7] * 20})
    definition = DataDefinition(numerical_columns=["carat"], categorical_columns=["cut"])
    return Report([DataDriftPreset()]).run(
        Dataset.from_pandas(frame, data_definition=definition),
        Dataset.from_pandas(frame.iloc[::-1].reset_index(drop=True), data_definition=definition),
    )


def _embedded(html: str) -> tuple[object, object]:
    match = re.search(r"var (metric_\w+) = (.*?);\n\s*var additional_graphs_\1 = (.*?);\n", html, re.S)
    assert match, "no data block found"
    return json.loads(match.group(2)), json.loads(match.group(3))


def _without_ids(value: object) -> object:
    """Widget ids are fresh per rendering; compare everything else."""
    text = json.dumps(value, sort_keys=True)
    return re.sub(r'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '"<id>"', text)


def test_script_safe_json_escapes_what_ends_a_script_and_reads_back_the_same() -> None:
    text = script_safe_json({"v": HOSTILE})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"v": HOSTILE}


def test_render_page_embeds_the_same_data_as_evidently() -> None:
    snapshot = _snapshot()
    theirs = _embedded(snapshot.get_html_str(as_iframe=False))  # type: ignore[attr-defined]
    ours = _embedded(render_page(snapshot).html)
    assert _without_ids(ours[0]) == _without_ids(theirs[0])
    assert len(ours[1]) == len(theirs[1])  # type: ignore[arg-type]


def test_render_page_has_no_hostile_markup_and_pins_every_script_by_hash() -> None:
    page = render_page(_snapshot())
    assert "</script><script>alert(1)" not in page.html
    scripts = re.findall(r"<script>(.*?)</script>", page.html, re.S)
    assert len(scripts) == 4
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in page.content_security_policy
    assert "unsafe-inline" not in page.content_security_policy.split("script-src")[1].split(";")[0]
