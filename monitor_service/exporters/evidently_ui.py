"""Evidently UI as a target: every stored snapshot becomes a run of the model's Evidently project.

The workspace is a local directory that `evidently ui --workspace DIR` serves, or a remote
Evidently UI (`RemoteWorkspace`, with its optional secret). One project per model, named
`project_prefix + model`: found by name, or created with a dashboard of drift, data-quality and
test panels read from the snapshots this monitor writes (engine/snapshot.py). A project that
already exists is used as it is, so dashboards edited in the UI are left alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from monitor_service.config import EvidentlyUIExport, ModelConfig
from monitor_service.results import CalculationResult

log = logging.getLogger(__name__)

V2 = "evidently:metric_v2:"


class EvidentlyUIExporter:
    """Pushes snapshots into an Evidently workspace, one project per model."""

    name = "evidently_ui"

    def __init__(self, settings: EvidentlyUIExport, models: Sequence[ModelConfig]) -> None:
        self.settings = settings
        self.models = {m.name: m for m in models}
        self._workspace: Any = None
        self._projects: dict[str, Any] = {}
        self._lock = threading.Lock()

    def push(self, model: str, result: CalculationResult, snapshot: str) -> None:
        from evidently.core.report import Snapshot

        del result  # the snapshot carries the verdict in its metadata and tags
        with self._lock:
            workspace = self._connect()
            project_id = self._project_id(workspace, model)
            try:
                workspace.add_run(project_id, Snapshot.loads(snapshot), include_data=False)
            except Exception:
                # The project may have been deleted in the UI, or the server restarted: look it up
                # again next time.
                self._projects.pop(model, None)
                self._workspace = None
                raise

    def close(self) -> None:
        with self._lock:
            self._workspace = None
            self._projects.clear()

    def project_name(self, model: str) -> str:
        return self.settings.project_prefix + model

    def _connect(self) -> Any:
        if self._workspace is None:
            if self.settings.workspace is not None:
                from evidently.ui.workspace import Workspace

                self._workspace = Workspace(str(self.settings.workspace))
            else:
                from evidently.ui.workspace import RemoteWorkspace

                assert self.settings.url is not None
                self._workspace = RemoteWorkspace(self.settings.url, secret=self.settings.secret)
        return self._workspace

    def _project_id(self, workspace: Any, model: str) -> Any:
        cached = self._projects.get(model)
        if cached is not None:
            return cached
        name = self.project_name(model)
        found = list(workspace.search_project(name))
        if len(found) > 1:
            log.warning(
                "Evidently workspace holds %d projects named %r; using %s", len(found), name, found[0].id
            )
        if found:
            project = found[0]
        else:
            project = workspace.create_project(name, description=_description(model))
            configure_dashboard(project, model, self.models.get(model))
            log.info("created Evidently project %r (%s) with its dashboard", name, project.id)
        self._projects[model] = project.id
        return project.id


def _description(model: str) -> str:
    return f"Drift monitor reports of model {model}: one run per stored calculation."


def configure_dashboard(project: Any, name: str, model: ModelConfig | None) -> None:
    """Drift and data-quality panels of the metrics in this monitor's snapshots (one tab: Evidently
    OSS refuses more)."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import counter_panel, line_plot_panel, text_panel

    from monitor_service.engine.tests_suite import tested_columns

    dashboard = project.dashboard
    dashboard.add_panel(
        text_panel(
            title=f"Drift monitor: model {name}",
            description="One run per stored calculation. The monitor's verdict (dataset drift, failed "
            "tests) is in each run's tags and metadata: filter the Reports tab on them.",
        )
    )
    dashboard.add_panel(
        counter_panel(
            title="Rows in the window",
            description="rows the latest stored calculation compared with the reference",
            size="full",
            values=[PanelMetric(legend="rows", metric=V2 + "RowCount")],
            aggregation="last",
        )
    )
    dashboard.add_panel(
        line_plot_panel(
            title="Share of drifted feature columns over time",
            values=[
                PanelMetric(
                    legend="drifted share",
                    metric=V2 + "DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
        ),
    )
    if model is not None:
        columns = [*model.columns.features, *model.columns.prediction_columns]
        if model.columns.target:
            columns.append(model.columns.target)
        dashboard.add_panel(
            line_plot_panel(
                title="Drift score per column",
                description="the stat test's score: a p-value (ks, chisquare, z) or a distance",
                values=[
                    PanelMetric(legend=column, metric=V2 + "ValueDrift", metric_labels={"column": column})
                    for column in columns
                ],
            ),
        )
        tested = tested_columns(model)
        dashboard.add_panel(
            line_plot_panel(
                title="Missing values per column (share)",
                values=[
                    PanelMetric(
                        legend=column,
                        metric=V2 + "MissingValueCount",
                        metric_labels={"column": column, "value_type": "share"},
                    )
                    for column, _ in tested
                ],
            ),
        )
        dashboard.add_panel(
            line_plot_panel(
                title="Values outside the reference (count)",
                description="numbers beyond the reference's range, categories it never had",
                values=[
                    PanelMetric(
                        legend=column,
                        metric=V2 + ("OutRangeValueCount" if numerical else "OutListValueCount"),
                        metric_labels={"column": column, "value_type": "count"},
                    )
                    for column, numerical in tested
                ],
            ),
        )
    dashboard.add_panel(
        line_plot_panel(
            title="Duplicated rows",
            values=[PanelMetric(legend="duplicated rows", metric=V2 + "DuplicatedRowCount")],
        ),
    )
