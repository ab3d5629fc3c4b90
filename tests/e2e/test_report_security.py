"""The HTML report cannot run script that came from rows or labels (stored XSS), checked in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import DIAMONDS, rows_of, write_config
from tests.support.browser import dump_dom
from tests.support.processes import RunningProcess, free_port, start_monitor

pytestmark = pytest.mark.integration

ROW_PAYLOAD = "</script><script>document.title='XSS-FROM-ROW'</script>"
LABEL_PAYLOAD = "</script><script>document.title='XSS-FROM-LABEL'</script>"
ATTRIBUTE_PAYLOAD = '"><img src=x onerror="document.title=\'XSS-FROM-ATTRIBUTE\'">'
ADMIN = "admin-token-for-the-report-test"


def _classifier(name: str = "expensive", mode: str = "tested") -> dict[str, object]:
    return {
        "name": name,
        "task": "classification",
        "reference": str(DIAMONDS / "reference_classification.csv"),
        "columns": {
            "id": "request_id",
            "target": "expensive",
            "prediction": "prediction",
            "numerical": ["carat", "depth"],
            "categorical": ["cut", "color"],
        },
        "schedule": {"every": "1h", "min_rows": 10},
        "drift": {"mode": mode},
    }


# Each drift mode's report, and what shows that it rendered: tested mode's verdict widgets (made of
# data, engine/verdict.py) on top, or Evidently's drift preset in legacy mode.
MODES = {"expensive": ">Drift verdict of model expensive<", "legacy": ">Share of Drifted Columns<"}


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProcess]:
    tmp = tmp_path_factory.mktemp("report-xss")
    models = [_classifier(), _classifier("legacy", "legacy")]
    config = write_config(tmp / "monitor.yaml", models, executor="process", admin_token=ADMIN)
    process = start_monitor(config, free_port(), tmp / "monitor.log", timeout=90)
    yield process
    assert process.stop(timeout=20) == 0, process.log_tail()


def _hostile_rows() -> list[dict[str, object]]:
    rows = []
    for i, row in enumerate(rows_of("drifted", 300)):
        rows.append(
            {
                "request_id": f"r-{i}",
                "carat": row["carat"],
                "depth": row["depth"],
                "cut": ROW_PAYLOAD if i % 3 == 0 else row["cut"],
                "color": ATTRIBUTE_PAYLOAD if i % 5 == 0 else row["color"],
                "prediction": ROW_PAYLOAD if i % 7 == 0 else "1",
            }
        )
    return rows


@pytest.mark.parametrize("model", list(MODES))
def test_report_runs_no_script_from_rows_or_labels(
    monitor: RunningProcess, tmp_path: Path, model: str
) -> None:
    base = monitor.base_url
    auth = {"Authorization": f"Bearer {ADMIN}"}
    response = requests.post(
        f"{base}/v1/models/{model}/rows", json={"rows": _hostile_rows()}, headers=auth, timeout=30
    )
    assert response.status_code == 202, response.text
    labels = [{"id": f"r-{i}", "target": LABEL_PAYLOAD if i % 2 else "0"} for i in range(300)]
    response = requests.post(
        f"{base}/v1/models/{model}/labels", json={"labels": labels}, headers=auth, timeout=30
    )
    assert response.status_code == 202, response.text

    # The report is admin-only; Chromium cannot send a header, so the page is fetched here and served
    # to Chromium from a file, with the Content-Security-Policy the server sent as a <meta> inside.
    calculated = requests.post(f"{base}/v1/models/{model}/calculate", headers=auth, timeout=120)
    assert calculated.status_code == 200, calculated.text  # stores the calculation's report
    report = requests.get(f"{base}/v1/models/{model}/report", headers=auth, timeout=120)
    assert report.status_code == 200, report.text[:2000]
    assert report.headers["x-content-type-options"] == "nosniff"
    policy = report.headers["content-security-policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'sha256-" in script_src and "'unsafe-inline'" not in script_src
    assert "sandbox" in policy
    page = tmp_path / "report.html"
    page.write_text(report.text, encoding="utf-8")

    dom = dump_dom(page.as_uri(), budget_ms=15_000)
    assert "<title>XSS" not in dom, "a hostile value ran as script"
    assert "onerror" not in dom.split("<script")[0], "a hostile value became markup"
    # The report itself still renders under the policy: its drift table is in the DOM.
    assert "<table" in dom, dom[-2000:]
    assert MODES[model] in dom


def test_report_page_without_escaping_would_run_the_payload(tmp_path: Path) -> None:
    """The check above can fail: Evidently's own page with the same kind of value runs it."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    frame = pd.DataFrame({"cut": ["Ideal", "Good", ROW_PAYLOAD] * 20, "carat": [0.3, 0.5, 0.7] * 20})
    definition = DataDefinition(numerical_columns=["carat"], categorical_columns=["cut"])
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(frame, data_definition=definition),
        Dataset.from_pandas(frame.iloc[::-1].reset_index(drop=True), data_definition=definition),
    )
    page = tmp_path / "evidently.html"
    page.write_text(snapshot.get_html_str(as_iframe=False), encoding="utf-8")
    dom = dump_dom(page.as_uri(), budget_ms=15_000)
    assert "<title>XSS-FROM-ROW</title>" in dom
