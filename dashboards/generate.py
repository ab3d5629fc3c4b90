#!/usr/bin/env python3
"""Generate the drift monitor's Grafana dashboards (JSON) from plain Python dicts.

    python dashboards/generate.py                  # rewrite dashboards/*.json
    python dashboards/generate.py --output-dir DIR # write elsewhere (the tests compare the two)

The JSON files are committed: Grafana provisions them from disk (dashboards/provisioning/), and a
change to this script without regenerating fails tests/observability/test_dashboards.py.

Conventions (checked by the tests):
- Grafana 11, schemaVersion 39; every panel and query uses the Prometheus data source through the
  ``${datasource}`` variable, whose default is the provisioned uid ``prometheus``.
- Every panel has a description written for the people reading it, a unit and thresholds.
- Queries use only the metrics of docs/metrics.md and the recording rules of rules/.
- Template variables: ``model`` (all dashboards) and ``column`` (where panels are per column),
  multi-value with "All"; queries filter with ``=~"$model"``.
- Several monitors scraped: every member of a cluster (docs/cluster.md) serves the same result
  series, so queries of result gauges aggregate over ``instance`` (``max without (instance)``,
  ``max by (model, ...)``): one line per model and column, not per member. On one node this
  changes nothing. Per-member panels (CPU, memory, up) keep ``{{instance}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Json = dict[str, Any]

SCHEMA_VERSION = 39
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UID = "prometheus"  # dashboards/provisioning/datasources/prometheus.yml
TAGS = ["drift-monitor"]
GRID_WIDTH = 24
HERE = Path(__file__).resolve().parent

M = '{model=~"$model"}'  # the model filter most queries use
MC = '{model=~"$model", column=~"$column"}'

DRIFT_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "No drift", "color": "green", "index": 0},
            "1": {"text": "Drift", "color": "red", "index": 1},
        },
    }
]

TEST_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "Fail", "color": "red", "index": 0},
            "1": {"text": "Pass", "color": "green", "index": 1},
        },
    }
]


# ----------------------------------------------------------------------------- building blocks


def target(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False
) -> Json:
    """One Prometheus query of a panel."""
    return {
        "datasource": DATASOURCE,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": "table" if table else "time_series",
        "editorMode": "code",
    }


def quantile_targets(histogram: str, high: float) -> list[Json]:
    """Per model, the median and the `high` quantile of a histogram (its name without `_bucket`)."""
    return [
        target(
            f"histogram_quantile({q}, sum by (le, model) (rate({histogram}_bucket{M}[$__rate_interval])))",
            f"{{{{model}}}} p{round(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (high, "B"))
    ]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    """Absolute thresholds: ``(None, "green"), (0.5, "red")`` = green below 0.5, red from 0.5."""
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


GREEN_ONLY = thresholds((None, "green"))


def _field_config(
    unit: str,
    steps: Json,
    *,
    custom: Json | None = None,
    mappings: Sequence[Json] = (),
    overrides: Sequence[Json] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    decimals: int | None = None,
    color_mode: str = "palette-classic",
) -> Json:
    defaults: Json = {
        "unit": unit,
        "thresholds": steps,
        "color": {"mode": color_mode},
        "mappings": list(mappings),
        "custom": custom or {},
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if decimals is not None:
        defaults["decimals"] = decimals
    return {"defaults": defaults, "overrides": list(overrides)}


def _panel(
    kind: str, title: str, description: str, targets: Sequence[Json], field_config: Json, options: Json
) -> Json:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": list(targets),
        "fieldConfig": field_config,
        "options": options,
    }


def timeseries(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    unit: str,
    steps: Json = GREEN_ONLY,
    threshold_style: str = "off",
    minimum: float | None = None,
    maximum: float | None = None,
    decimals: int | None = None,
    overrides: Sequence[Json] = (),
    draw_style: str = "line",
    legend_calcs: Sequence[str] = ("lastNotNull", "max"),
) -> Json:
    """A time series panel; ``threshold_style`` "line"/"dashed" draws the thresholds on the graph."""
    custom = {
        "drawStyle": draw_style,
        "lineInterpolation": "stepAfter" if draw_style == "line" else "linear",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "axisPlacement": "auto",
        "thresholdsStyle": {"mode": threshold_style},
    }
    options = {
        "legend": {
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
            "calcs": list(legend_calcs),
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    config = _field_config(
        unit,
        steps,
        custom=custom,
        overrides=overrides,
        minimum=minimum,
        maximum=maximum,
        decimals=decimals,
    )
    return _panel("timeseries", title, description, targets, config, options)


def stat(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    unit: str,
    steps: Json,
    mappings: Sequence[Json] = (),
    decimals: int | None = None,
    graph: bool = False,
) -> Json:
    """A stat panel showing the last value of each series, colored by thresholds."""
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "area" if graph else "none",
        "textMode": "value_and_name",
        "justifyMode": "auto",
        "orientation": "auto",
        "wideLayout": True,
        "showPercentChange": False,
    }
    config = _field_config(unit, steps, mappings=mappings, decimals=decimals, color_mode="thresholds")
    return _panel("stat", title, description, targets, config, options)


def state_timeline(
    title: str, description: str, targets: Sequence[Json], *, steps: Json, mappings: Sequence[Json]
) -> Json:
    """A state timeline: one row per series, colored by value (e.g. drift / no drift over time)."""
    options = {
        "showValue": "never",
        "mergeValues": True,
        "alignValue": "left",
        "rowHeight": 0.8,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    config = _field_config(
        "none", steps, custom={"fillOpacity": 80, "lineWidth": 0}, mappings=mappings, color_mode="thresholds"
    )
    return _panel("state-timeline", title, description, targets, config, options)


def table(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    unit: str,
    steps: Json,
    rename: dict[str, str],
    overrides: Sequence[Json] = (),
    sort_by: str | None = None,
    descending: bool = True,
) -> Json:
    """A table of instant queries merged on their common labels (one row per model/column...)."""
    options: Json = {
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "fields": ""},
    }
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": descending}]
    panel = _panel(
        "table",
        title,
        description,
        targets,
        _field_config(unit, steps, overrides=overrides, color_mode="thresholds", custom={"align": "auto"}),
        options,
    )
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True},
                "renameByName": rename,
                "indexByName": {},
            },
        },
    ]
    return panel


def by_name(name: str, **properties: Any) -> Json:
    """A field override for the field (table column or series) called ``name``."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def by_regexp(pattern: str, **properties: Any) -> Json:
    """A field override for the series whose display name matches ``pattern``."""
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


DASHED_THRESHOLD_SERIES = by_regexp(
    ".*threshold.*",
    **{
        "custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
        "custom.fillOpacity": 0,
        "color": {"mode": "fixed", "fixedColor": "red"},
    },
)


def row(title: str) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


class Layout:
    """Places panels left to right in rows of 24 grid units, and numbers them."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
            self._x = 0
            self._row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self._place(row(title), GRID_WIDTH, 1)
        self._newline()

    def add(self, panel: Json, width: int, height: int = 8) -> None:
        if self._x + width > GRID_WIDTH:
            self._newline()
        self._place(panel, width, height)

    def _place(self, panel: Json, width: int, height: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": height, "w": width, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)


# ----------------------------------------------------------------------------- template variables


def datasource_variable() -> Json:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {"selected": True, "text": "Prometheus", "value": DATASOURCE_UID},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, definition: str, description: str) -> Json:
    """A multi-value query variable fed by ``label_values(...)``, refreshed with the time range."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"qryType": 1, "query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "includeAll": True,
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }


MODEL_VARIABLE = query_variable(
    "model",
    "Model",
    "label_values(drift_monitor_schedule_interval_seconds, model)",
    "Models configured in the drift monitor(s).",
)
COLUMN_VARIABLE = query_variable(
    "column",
    "Column",
    'label_values(drift_monitor_column_drift_detected{model=~"$model"}, column)',
    "Columns of the selected models (features, target and prediction).",
)


def dashboard(uid: str, title: str, description: str, layout: Layout, variables: Iterable[Json]) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "title": "Drift monitor",
                "tags": TAGS,
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": layout.panels,
    }


# ----------------------------------------------------------------------------- (a) drift overview


def drift_overview() -> Json:
    layout = Layout()
    layout.row("Dataset drift")
    layout.add(
        stat(
            "Dataset drift (confirmed)",
            "The model's confirmed drift state, which the alerts use: on after the raw verdict held for "
            "drift.confirm calculations and a full turnover of the window's rows, off after drift.clear "
            "calculations without it. Drift alone does not mean the model is worse: check model quality. "
            "What each number means: docs/statistics.md.",
            [target(f"max by (model) (drift_monitor_dataset_drift_confirmed{M})", "{{model}}", instant=True)],
            unit="none",
            steps=thresholds((None, "green"), (1, "red")),
            mappings=DRIFT_MAPPINGS,
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Latest calculation's verdict",
            "The raw verdict of the latest calculation. Tested mode: the domain classifier tells window rows "
            "from reference rows, or a feature column drifted after the correction across columns, or one "
            "could not be tested; legacy mode: the share of drifted columns reached drift.share. Single "
            "calculations err now and then (at most drift.alpha of them with no drift): read the confirmed "
            "state for decisions.",
            [target(f"max by (model) (drift_monitor_dataset_drift{M})", "{{model}}", instant=True)],
            unit="none",
            steps=thresholds((None, "green"), (1, "orange")),
            mappings=DRIFT_MAPPINGS,
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Domain classifier AUC",
            "How well a classifier trained on the latest calculation's rows tells window rows from reference "
            "rows, on rows it did not train on: 0.5 = indistinguishable, 1 = fully separable. It sees "
            "changes of the columns' joint distribution that no single column shows. It detects when its "
            "p-value is at or below its alpha AND the AUC reaches drift.classifier.min_auc (0.62 by "
            "default). Tested mode only.",
            [target(f"max by (model) (drift_monitor_domain_classifier_auc{M})", "{{model}}", instant=True)],
            unit="none",
            steps=thresholds((None, "green"), (0.56, "orange"), (0.62, "red")),
            decimals=2,
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Drifted feature columns (count)",
            "Feature columns that drifted in the latest calculation (tested mode: after the correction "
            "across columns and with an effect size at or above its floor; columns that could not be tested "
            "count too).",
            [target(f"max by (model) (drift_monitor_drifted_columns{M})", "{{model}}", instant=True)],
            unit="none",
            steps=thresholds((None, "green"), (1, "orange")),
            decimals=0,
        ),
        6,
        6,
    )
    layout.add(
        state_timeline(
            "Dataset drift over time: confirmed and raw",
            "Two rows per model: the confirmed state (what alerts on) and the raw verdict of each "
            "calculation. Raw blips that never turn the confirmed row red are the noise the confirmation "
            "is there to absorb.",
            [
                target(f"max by (model) (drift_monitor_dataset_drift_confirmed{M})", "{{model}} confirmed"),
                target(f"max by (model) (drift_monitor_dataset_drift{M})", "{{model}} raw", "B"),
            ],
            steps=thresholds((None, "green"), (1, "red")),
            mappings=DRIFT_MAPPINGS,
        ),
        12,
        8,
    )
    layout.add(
        table(
            "What explains it: top columns of the domain classifier",
            "For each model whose classifier detected drift in the latest calculation, the three feature "
            "columns it relies on most: the AUC it loses when the column's values are shuffled among the "
            "held-out rows. A column can explain the classifier without drifting on its own (its relation to "
            "other columns changed). Empty while the classifier detects nothing.",
            [
                target(
                    "topk by (model) (3, max by (model, column) "
                    f"(drift_monitor_domain_classifier_column_importance{M}) > 0)",
                    ref="A",
                    instant=True,
                    table=True,
                )
            ],
            unit="none",
            steps=GREEN_ONLY,
            rename={"model": "Model", "column": "Column", "Value": "AUC lost when shuffled"},
            overrides=[by_name("AUC lost when shuffled", decimals=3)],
            sort_by="AUC lost when shuffled",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Domain classifier AUC over time",
            "Held-out AUC of the domain classifier per model (solid) and the AUC it must reach to detect "
            "(dashed, drift.classifier.min_auc). Around 0.5 with no drift; its noise shrinks as the window "
            "grows (up to drift.classifier.max_rows rows per side).",
            [
                target(f"max by (model) (drift_monitor_domain_classifier_auc{M})", "{{model}}"),
                target(
                    f"max by (model) (drift_monitor_domain_classifier_min_auc{M})", "{{model}} threshold", "B"
                ),
            ],
            unit="none",
            minimum=0.4,
            maximum=1,
            decimals=2,
            overrides=[DASHED_THRESHOLD_SERIES],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Drifted and untestable feature columns",
            "Feature columns that drifted per calculation, and those that could not be tested at all (all "
            "null in the window, or a test that failed: they count as drifted, see the Column drift table "
            "and drift_monitor_column_untestable for the reason).",
            [
                target(f"max by (model) (drift_monitor_drifted_columns{M})", "{{model}} drifted"),
                target(f"max by (model) (drift_monitor_untestable_columns{M})", "{{model}} untestable", "B"),
            ],
            unit="none",
            minimum=0,
            decimals=0,
        ),
        12,
        8,
    )

    layout.row("Per-column drift")
    layout.add(
        table(
            "Column drift (latest calculation)",
            "One row per column. Tested mode: the two-sample test (Test) and its raw p-value, the p-value "
            "corrected across all the model's tests and the alpha it is compared with, the effect size and "
            "its floor, and the change of the missing share (window minus reference, when either has "
            "nulls). A column drifts when corrected p <= alpha AND effect >= floor, or when its missing "
            "share changed significantly by at least drift.min_missing_change. Legacy mode: Score is the "
            "stat test's value against Alpha/threshold (p-values drift below it, distances at or above). "
            "Drift: this calculation; Confirmed: what alerts on. Sorted with confirmed columns first.",
            [
                target(
                    f"max by (model, column, role, stattest) (drift_monitor_column_drift_score{MC})",
                    ref="A",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (model, column, role) (drift_monitor_column_drift_corrected_p_value"
                    '{model=~"$model", column=~"$column", signal="distribution"})',
                    ref="B",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (model, column, role) (drift_monitor_column_drift_threshold{MC})",
                    ref="C",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (model, column, role) (drift_monitor_column_drift_effect_size"
                    '{model=~"$model", column=~"$column", signal="distribution"})',
                    ref="D",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (model, column, role) (drift_monitor_column_drift_min_effect"
                    '{model=~"$model", column=~"$column", signal="distribution"})',
                    ref="E",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (model, column, role) (drift_monitor_column_drift_effect_size"
                    '{model=~"$model", column=~"$column", signal="missing"})',
                    ref="F",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (model, column, role) (drift_monitor_column_drift_detected{MC})",
                    ref="G",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (model, column, role) (drift_monitor_column_drift_confirmed{MC})",
                    ref="H",
                    instant=True,
                    table=True,
                ),
            ],
            unit="none",
            steps=GREEN_ONLY,
            rename={
                "model": "Model",
                "column": "Column",
                "role": "Role",
                "stattest": "Test",
                "Value #A": "p-value / score",
                "Value #B": "Corrected p",
                "Value #C": "Alpha / threshold",
                "Value #D": "Effect size",
                "Value #E": "Effect floor",
                "Value #F": "Missing share change",
                "Value #G": "Drift",
                "Value #H": "Confirmed",
            },
            overrides=[
                by_name("p-value / score", decimals=4),
                by_name("Corrected p", decimals=4),
                by_name("Alpha / threshold", decimals=4),
                by_name("Effect size", decimals=3),
                by_name("Effect floor", decimals=3),
                by_name("Missing share change", unit="percentunit", decimals=1),
                by_name(
                    "Drift",
                    mappings=DRIFT_MAPPINGS,
                    thresholds=thresholds((None, "green"), (1, "orange")),
                    **{"custom.cellOptions": {"type": "color-background"}},
                ),
                by_name(
                    "Confirmed",
                    mappings=DRIFT_MAPPINGS,
                    thresholds=thresholds((None, "green"), (1, "red")),
                    **{"custom.cellOptions": {"type": "color-background"}},
                ),
            ],
            sort_by="Confirmed",
        ),
        24,
        10,
    )
    effect_vs_floor = timeseries(
        "Effect size vs floor: $column",
        "Tested mode: the column's effect size per model over time (solid; the legend names the measure: "
        "wasserstein in reference standard deviations, jensenshannon, psi) and the floor it must reach to "
        "count as drift (dashed). Significance is the other half of the rule: see the corrected p-value in "
        "the table above.",
        [
            target(
                "max without (instance) ("
                'drift_monitor_column_drift_effect_size{model=~"$model", column=~"$column", '
                'signal="distribution"})',
                "{{model}} {{measure}}",
            ),
            target(
                "max without (instance) ("
                'drift_monitor_column_drift_min_effect{model=~"$model", column=~"$column", '
                'signal="distribution"})',
                "{{model}} threshold",
                "B",
            ),
        ],
        unit="none",
        decimals=3,
        minimum=0,
        overrides=[DASHED_THRESHOLD_SERIES],
    )
    effect_vs_floor.update({"repeat": "column", "repeatDirection": "h", "maxPerRow": 3})
    layout.add(effect_vs_floor, 8, 8)

    layout.row("Target and prediction drift")
    layout.add(
        stat(
            "Target drift (confirmed)",
            "Whether the distribution of the ground-truth labels (target) is confirmed drifted. Target drift "
            "means the world changed (concept or population shift), which usually matters more than drift "
            "of a single feature. Empty until labels are sent with the rows.",
            [
                target(
                    "max by (model, column) "
                    '(drift_monitor_column_drift_confirmed{model=~"$model", role="target"})',
                    "{{model}} / {{column}}",
                    instant=True,
                )
            ],
            unit="none",
            steps=thresholds((None, "green"), (1, "red")),
            mappings=DRIFT_MAPPINGS,
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Prediction drift (confirmed)",
            "Whether the distribution of the model's outputs is confirmed drifted. It needs no labels, so it "
            "is often the earliest sign that the model behaves differently.",
            [
                target(
                    "max by (model, column) "
                    '(drift_monitor_column_drift_confirmed{model=~"$model", role="prediction"})',
                    "{{model}} / {{column}}",
                    instant=True,
                )
            ],
            unit="none",
            steps=thresholds((None, "green"), (1, "red")),
            mappings=DRIFT_MAPPINGS,
        ),
        6,
        6,
    )
    layout.add(
        timeseries(
            "Target and prediction effect sizes",
            "Tested mode: effect sizes of the target and prediction columns (solid) and their floors "
            "(dashed), per model.",
            [
                target(
                    "max without (instance) ("
                    'drift_monitor_column_drift_effect_size{model=~"$model", role=~"target|prediction", '
                    'signal="distribution"})',
                    "{{model}} {{role}} {{column}} ({{measure}})",
                ),
                target(
                    "max without (instance) ("
                    'drift_monitor_column_drift_min_effect{model=~"$model", role=~"target|prediction", '
                    'signal="distribution"})',
                    "{{model}} {{role}} {{column}} threshold",
                    "B",
                ),
            ],
            unit="none",
            decimals=3,
            minimum=0,
            overrides=[DASHED_THRESHOLD_SERIES],
        ),
        12,
        6,
    )
    return dashboard(
        "drift-monitor-drift",
        "Drift monitor / Drift overview",
        "Is the live data of each model still like its reference data? Confirmed and raw dataset drift, "
        "the domain classifier and the columns explaining it, per-column tests (corrected p-values, effect "
        "sizes), target and prediction drift. docs/statistics.md explains every number.",
        layout,
        [MODEL_VARIABLE, COLUMN_VARIABLE],
    )


# ----------------------------------------------------------------------------- (b) data quality


def data_quality() -> Json:
    layout = Layout()
    layout.row("Missing values")
    layout.add(
        table(
            "Missing values: current window vs reference",
            "Share of rows with a missing (null/NaN) value per column, in the current window and in the "
            "reference, and the difference. A difference above 5 percentage points for 30 minutes raises "
            "DriftMonitorHighMissingValues; typical causes are a broken upstream join or a renamed field.",
            [
                target(
                    'max by (model, column) (drift_monitor_column_missing_values_ratio{model=~"$model", '
                    'column=~"$column", dataset="current"})',
                    ref="A",
                    instant=True,
                    table=True,
                ),
                target(
                    'max by (model, column) (drift_monitor_column_missing_values_ratio{model=~"$model", '
                    'column=~"$column", dataset="reference"})',
                    ref="B",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (model, column) "
                    f"(model_column:drift_monitor_column_missing_values_ratio:current_minus_reference{MC})",
                    ref="C",
                    instant=True,
                    table=True,
                ),
            ],
            unit="percentunit",
            steps=GREEN_ONLY,
            rename={
                "model": "Model",
                "column": "Column",
                "Value #A": "Current",
                "Value #B": "Reference",
                "Value #C": "Difference",
            },
            overrides=[
                by_name(
                    "Difference",
                    thresholds=thresholds((None, "green"), (0.02, "orange"), (0.05, "red")),
                    **{"custom.cellOptions": {"type": "color-text"}},
                )
            ],
            sort_by="Difference",
        ),
        12,
        9,
    )
    layout.add(
        timeseries(
            "Missing values above reference",
            "Percentage points of missing values the current window has more than the reference, per "
            "column. Above the red line (5 points) for 30 minutes raises DriftMonitorHighMissingValues. "
            "Negative values mean fewer missing values than in the reference, which is harmless.",
            [
                target(
                    f"model_column:drift_monitor_column_missing_values_ratio:current_minus_reference{MC}",
                    "{{model}} / {{column}}",
                )
            ],
            unit="percentunit",
            steps=thresholds((None, "green"), (0.05, "red")),
            threshold_style="dashed",
        ),
        12,
        9,
    )
    layout.add(
        timeseries(
            "Missing values in the current window",
            "Share of rows with a missing value per column in the window of the latest calculation.",
            [
                target(
                    'max without (instance) (drift_monitor_column_missing_values_ratio{model=~"$model", '
                    'column=~"$column", dataset="current"})',
                    "{{model}} / {{column}}",
                )
            ],
            unit="percentunit",
            minimum=0,
        ),
        24,
        8,
    )

    layout.row("Values the reference never saw")
    layout.add(
        timeseries(
            "Out-of-range values (numerical columns)",
            "Share of current values outside the [min, max] range seen in the reference, per numerical "
            "column. The model never saw such values during training; a few percent may be normal growth, "
            "a jump usually means a unit or scale change upstream.",
            [
                target(
                    f"max without (instance) (drift_monitor_column_out_of_range_ratio{MC})",
                    "{{model}} / {{column}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            steps=thresholds((None, "green"), (0.01, "orange"), (0.05, "red")),
            threshold_style="dashed",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "New categories (categorical columns)",
            "Share of current values whose category never appears in the reference, per categorical "
            "column: a new product, country or code the model cannot know about.",
            [
                target(
                    f"max without (instance) (drift_monitor_column_new_category_ratio{MC})",
                    "{{model}} / {{column}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            steps=thresholds((None, "green"), (0.01, "orange"), (0.05, "red")),
            threshold_style="dashed",
        ),
        12,
        8,
    )

    layout.row("Values that break their contract")
    layout.add(
        timeseries(
            "Contract violations",
            "Share of the rows accepted whose value of the column broke its contract (models[].contracts: "
            "outside min/max, not an allowed value, beyond contracts.max_abs), by the action taken: reject "
            "(the batch got a 422 and is not in the window), nullify (stored as missing), keep. Usually a "
            "unit, a sentinel or a category renamed upstream. DriftMonitorContractViolations fires above "
            "0.1 % for 15 minutes.",
            [
                target(
                    f"model_column_action:drift_monitor_contract_violations:rate10m{MC}"
                    " / on (job, cluster, instance, model) group_left () "
                    f"model:drift_monitor_rows_ingested:rate5m{M}",
                    "{{model}} / {{column}} ({{action}})",
                )
            ],
            unit="percentunit",
            minimum=0,
            steps=thresholds((None, "green"), (0.001, "orange")),
            threshold_style="dashed",
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Missing-value codes",
            "Values per second equal to one of the column's declared missing-value codes (contracts "
            "`missing: [...]`, e.g. -1 or 999999), stored as missing. A jump means an upstream system "
            "lost the value more often, which the missing-values panels above show too.",
            [
                target(
                    f"sum without (instance) (rate(drift_monitor_missing_codes_total{MC}[$__rate_interval]))",
                    "{{model}} / {{column}}",
                )
            ],
            unit="short",
            minimum=0,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Event lag p50 / p95",
            "Arrival time minus event time (columns.timestamp) of the rows accepted: how late the "
            "service reports its predictions. With window.age_by: event_time, rows later than the "
            "window's age never enter it. 0 for rows without an event time.",
            quantile_targets("drift_monitor_event_lag_seconds", 0.95),
            unit="s",
            minimum=0,
        ),
        8,
        8,
    )

    layout.row("Rows")
    layout.add(
        timeseries(
            "Rows per calculation",
            "Rows in the current window and in the reference used by the latest calculation. Drift tests on "
            "a few hundred rows are noisy; if the current window is much smaller than the reference, "
            "consider a longer window.",
            [target(f"max without (instance) (drift_monitor_dataset_rows{M})", "{{model}} {{dataset}}")],
            unit="short",
            minimum=0,
            decimals=0,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Window fill",
            "Rows currently in the sliding window as a share of its configured maximum (window.max_rows). "
            "At 100 % the oldest rows are dropped as new ones arrive.",
            [
                target(
                    "max without (instance) "
                    f"(drift_monitor_window_rows{M} / drift_monitor_window_max_rows{M})",
                    "{{model}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    layout.row("Test suites")
    layout.add(
        stat(
            "Failed tests now",
            "Pass/fail tests of the latest calculation that failed, per model: the data-stability tests "
            "derived from the reference (missing values, values outside the reference's range, unseen "
            "categories, constant columns, duplicated rows, row count) and the model's own. Their bounds "
            "are calibrated so that a window without problems fails any of them rarely (see "
            "docs/reports.md); the stored report of the calculation shows each test's value and bound.",
            [
                target(
                    f"count by (model) (drift_monitor_test_passed{M} == 0) "
                    f"or (0 * count by (model) (drift_monitor_test_passed{M}))",
                    "{{model}}",
                    instant=True,
                )
            ],
            unit="none",
            steps=thresholds((None, "green"), (1, "red")),
            decimals=0,
        ),
        6,
        8,
    )
    layout.add(
        table(
            "Failed tests",
            "Each failed test of the latest calculation with what it measured: offending rows for the "
            "auto-derived tests, a share of rows for custom ones, distinct values for constant-column "
            "tests. Critical tests (tests.critical in the model's config) raise "
            "DriftMonitorCriticalTestFailed after 15 minutes.",
            [
                target(
                    'max by (model, test, critical) (drift_monitor_test_value{model=~"$model"} '
                    "+ on (job, instance, model, test) group_left (critical) "
                    '(drift_monitor_test_passed{model=~"$model"} == 0))',
                    instant=True,
                    table=True,
                )
            ],
            unit="none",
            steps=GREEN_ONLY,
            rename={"model": "Model", "test": "Test", "critical": "Critical", "Value": "Measured"},
            sort_by="Critical",
        ),
        18,
        8,
    )
    layout.add(
        state_timeline(
            "Tests over time",
            "One row per model and test: green while the test passed, red while it failed, blank while it "
            "could not be evaluated (e.g. a window too small for the condition to mean anything).",
            [target(f"min by (model, test) (drift_monitor_test_passed{M})", "{{model}} / {{test}}")],
            steps=thresholds((None, "red"), (1, "green")),
            mappings=TEST_MAPPINGS,
        ),
        24,
        10,
    )
    return dashboard(
        "drift-monitor-data-quality",
        "Drift monitor / Data quality",
        "Is the live data complete and within what the model was trained on? Missing values, "
        "out-of-range values and unseen categories per column, the rows behind each calculation, and "
        "the pass/fail test suites.",
        layout,
        [MODEL_VARIABLE, COLUMN_VARIABLE],
    )


# ----------------------------------------------------------------------------- (c) model quality


QUALITY_SCORES = 'metric!~"mae|rmse|mape"'
QUALITY_ERRORS = 'metric=~"mae|rmse|mape"'
INTERVAL_SERIES = by_regexp(
    ".*(lower|upper)$",
    **{"custom.lineStyle": {"fill": "dot", "dash": [2, 4]}, "custom.fillOpacity": 0},
)
BASELINE_SERIES = by_regexp(
    ".*baseline$",
    **{
        "custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
        "custom.fillOpacity": 0,
        "color": {"mode": "fixed", "fixedColor": "red"},
    },
)


def _with_interval(selector: str, legend: str = "{{model}} {{metric}}") -> list[Json]:
    """A quality metric, the two ends of its interval and its baseline, as four queries."""
    return [
        target(f"max without (instance) (drift_monitor_model_quality{{{selector}}})", legend, "A"),
        target(
            f"max without (instance) (drift_monitor_model_quality_lower{{{selector}}})",
            legend + " lower",
            "B",
        ),
        target(
            f"max without (instance) (drift_monitor_model_quality_upper{{{selector}}})",
            legend + " upper",
            "C",
        ),
        target(
            f"max without (instance) (drift_monitor_model_quality_baseline{{{selector}}})",
            legend + " baseline",
            "D",
        ),
    ]


def model_quality() -> Json:
    layout = Layout()
    layout.row("Realised quality (on labelled rows)")
    layout.add(
        table(
            "Quality now: value, 95 % interval, baseline, estimate",
            "Each quality metric of the latest calculation on the labelled rows of the window, with its 95 % "
            "interval (Wilson for accuracy and binary precision/recall, bootstrap otherwise), the baseline "
            "the alert compares with (the reference's own quality or quality.baseline), the estimate "
            "without labels (CBPE, binary classifiers with a probability column) and the rows the metric "
            "rests on. The alert pages only when the whole interval is worse than the baseline.",
            [
                target(
                    f"max without (instance) (drift_monitor_model_quality{M})",
                    ref="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_lower{M})",
                    ref="B",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_upper{M})",
                    ref="C",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_baseline{M})",
                    ref="D",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_estimated{M})",
                    ref="E",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_rows{M})",
                    ref="F",
                    instant=True,
                    table=True,
                ),
            ],
            unit="none",
            steps=GREEN_ONLY,
            rename={
                "model": "Model",
                "metric": "Metric",
                "Value #A": "Value",
                "Value #B": "Lower (95 %)",
                "Value #C": "Upper (95 %)",
                "Value #D": "Baseline",
                "Value #E": "Estimated (no labels)",
                "Value #F": "Rows",
            },
            overrides=[by_name("Rows", unit="short", decimals=0)],
            sort_by="Model",
            descending=False,
        ),
        16,
        8,
    )
    layout.add(
        stat(
            "Labelled rows",
            "Rows of the current window that carry a label (ground truth). Below quality.min_labelled_rows "
            "(100 by default) no quality is computed: the metrics are listed as insufficient_labels below.",
            [target(f"max by (model) (drift_monitor_labelled_rows{M})", "{{model}}", instant=True)],
            unit="short",
            steps=thresholds((None, "red"), (100, "green")),
            decimals=0,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Scores with their 95 % interval and baseline",
            "Accuracy, precision, recall, F1, ROC AUC, R² and the multiclass macro/weighted scores over time "
            "(higher is better): the value, the ends of its interval (dotted) and the baseline (dashed "
            "red). A drop below the baseline that the interval still covers is noise.",
            _with_interval(f'model=~"$model", {QUALITY_SCORES}'),
            unit="none",
            maximum=1,
            decimals=3,
            overrides=[INTERVAL_SERIES, BASELINE_SERIES],
        ),
        12,
        9,
    )
    layout.add(
        timeseries(
            "Regression errors with their 95 % interval and baseline",
            "MAE and RMSE (in the target's unit) and MAPE (percent, over the rows whose target is not zero) "
            "over time (lower is better): the value, the ends of its interval (dotted) and the baseline "
            "(dashed red).",
            _with_interval(f'model=~"$model", {QUALITY_ERRORS}'),
            unit="none",
            minimum=0,
            decimals=3,
            overrides=[INTERVAL_SERIES, BASELINE_SERIES],
        ),
        12,
        9,
    )
    layout.add(
        timeseries(
            "Shortfall against the baseline",
            "How far the whole 95 % interval of each metric lies on the bad side of its baseline, in the "
            "metric's unit (recording rule shortfall_vs_baseline). Above 0 for 30 minutes pages on-call "
            "(DriftMonitorModelQualityDrop); at or below 0 the labels cannot tell the model from its "
            "baseline.",
            [
                target(
                    f"model_metric:drift_monitor_model_quality:shortfall_vs_baseline{M}",
                    "{{model}} {{metric}}",
                )
            ],
            unit="none",
            steps=thresholds((None, "green"), (1e-9, "red")),
            threshold_style="dashed",
        ),
        12,
        8,
    )
    layout.add(
        table(
            "Quality not computed, and why",
            "Every quality metric asked for and not computed in the latest calculation, with its reason "
            "(no_labels, insufficient_labels, single_class, no_positive_labels, zero_targets, "
            "no_reference_labels, ...: docs/model-quality.md). kind says which part: realised, baseline "
            "(the alert cannot fire) or estimated.",
            [
                target(
                    " or ".join(
                        f"label_replace(max without (instance) (drift_monitor_{name}_skipped{M}) == 1, "
                        f'"kind", "{kind}", "", "")'
                        for name, kind in (
                            ("model_quality", "realised"),
                            ("model_quality_baseline", "baseline"),
                            ("model_quality_estimated", "estimated"),
                        )
                    ),
                    instant=True,
                    table=True,
                )
            ],
            unit="none",
            steps=GREEN_ONLY,
            rename={
                "model": "Model",
                "metric": "Metric",
                "kind": "Kind",
                "reason": "Reason",
                "Value": "Skipped",
            },
            sort_by="Model",
            descending=False,
        ),
        12,
        8,
    )
    layout.row("Estimated without labels (CBPE)")
    layout.add(
        timeseries(
            "Realised vs estimated",
            "Binary classifiers with a probability column: quality estimated from the probabilities "
            "calibrated on the reference (every row of the window, no labels needed; dotted: the interval "
            "where the realised value should fall) next to the realised quality on the labelled rows. A "
            "realised value outside the estimate's interval means the relation between inputs and labels "
            "changed (concept drift). The estimate's upper end below the baseline warns "
            "(DriftMonitorEstimatedQualityDrop).",
            [
                target(
                    f"max without (instance) (drift_monitor_model_quality_estimated{M})",
                    "{{model}} {{metric}} estimated",
                    "A",
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_estimated_lower{M})",
                    "{{model}} {{metric}} lower",
                    "B",
                ),
                target(
                    f"max without (instance) (drift_monitor_model_quality_estimated_upper{M})",
                    "{{model}} {{metric}} upper",
                    "C",
                ),
                target(
                    'max without (instance) (drift_monitor_model_quality{model=~"$model", '
                    'metric=~"accuracy|precision|recall|f1|roc_auc"}'
                    " and on (job, instance, model, metric) drift_monitor_model_quality_estimated)",
                    "{{model}} {{metric}} realised",
                    "D",
                ),
            ],
            unit="none",
            maximum=1,
            decimals=3,
            overrides=[INTERVAL_SERIES],
        ),
        16,
        9,
    )
    layout.add(
        timeseries(
            "Estimate shortfall against the baseline",
            "Baseline minus the upper end of the estimate's interval (recording rule). Above 0 for 30 "
            "minutes warns: even the optimistic estimate is below the baseline.",
            [
                target(
                    f"model_metric:drift_monitor_model_quality_estimated:shortfall_vs_baseline{M}",
                    "{{model}} {{metric}}",
                )
            ],
            unit="none",
            steps=thresholds((None, "green"), (1e-9, "orange")),
            threshold_style="dashed",
        ),
        8,
        9,
    )
    layout.row("Classes and labels")
    layout.add(
        timeseries(
            "Recall per class",
            "Classification: the share of each class's labelled rows that the model predicted as that class, "
            "with its 95 % Wilson interval (dotted). Classes come from quality.classes or the reference. A "
            "class missing here had no labelled row in the window.",
            [
                target(
                    f"max without (instance) (drift_monitor_model_class_recall{M})",
                    "{{model}} {{class}}",
                    "A",
                ),
                target(
                    f"max without (instance) (drift_monitor_model_class_recall_lower{M})",
                    "{{model}} {{class}} lower",
                    "B",
                ),
                target(
                    f"max without (instance) (drift_monitor_model_class_recall_upper{M})",
                    "{{model}} {{class}} upper",
                    "C",
                ),
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
            overrides=[INTERVAL_SERIES],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Label-arrival bias: labelled share per predicted class",
            "Share of each predicted class's rows (regression: prediction quintile) that carry a label. When "
            "the shares differ significantly (chi-square test) and by at least "
            "quality.label_bias_min_difference, labels come back faster for some predictions: the labelled "
            "rows are not representative, target drift is not reported, and realised quality describes "
            "the labelled rows only. drift_monitor_label_arrival_bias is then 1.",
            [target(f"max without (instance) (drift_monitor_labelled_ratio{M})", "{{model}} {{group}}")],
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    layout.add(
        state_timeline(
            "Label-arrival bias detected",
            "1 (orange) while labels arrive at different rates for different predictions: target drift is "
            "not reported meanwhile (its result says label_arrival_bias).",
            [target(f"max by (model) (drift_monitor_label_arrival_bias{M})", "{{model}}")],
            steps=thresholds((None, "green"), (1, "orange")),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "Labels unbiased", "color": "green", "index": 0},
                        "1": {"text": "Label-arrival bias", "color": "orange", "index": 1},
                    },
                }
            ],
        ),
        24,
        5,
    )
    layout.add(
        timeseries(
            "Labelled rows over time",
            "Rows of the window that carry a label at each calculation. Labels often arrive late; a drop "
            "to zero usually means the labelling pipeline stopped, not that quality changed.",
            [target(f"max by (model) (drift_monitor_labelled_rows{M})", "{{model}}")],
            unit="short",
            minimum=0,
            decimals=0,
            steps=thresholds((None, "red"), (100, "green")),
            threshold_style="dashed",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Labelled share of the window",
            "Labelled rows as a share of all rows in the current window: how much of the traffic quality "
            "is measured on.",
            [
                target(
                    f"max by (model) (drift_monitor_labelled_rows{M}) / "
                    f'max by (model) (drift_monitor_dataset_rows{{model=~"$model", dataset="current"}})',
                    "{{model}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    return dashboard(
        "drift-monitor-model-quality",
        "Drift monitor / Model quality",
        "Is the model still right? Quality on the labelled rows with 95 % intervals against the baseline, "
        "quality estimated without labels, per-class recall, what was not computed and why, and whether "
        "labels arrive evenly.",
        layout,
        [MODEL_VARIABLE],
    )


# ----------------------------------------------------------------------------- (d) monitor health


def monitor_health() -> Json:
    layout = Layout()
    layout.add(
        stat(
            "Monitor up",
            "Whether Prometheus can scrape each drift monitor (job drift-monitor). Down for 5 minutes pages "
            "on-call (DriftMonitorDown): no drift results are collected meanwhile.",
            [target('up{job="drift-monitor"}', "{{instance}}", instant=True)],
            unit="none",
            steps=thresholds((None, "red"), (1, "green")),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "Down", "color": "red", "index": 0},
                        "1": {"text": "Up", "color": "green", "index": 1},
                    },
                }
            ],
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Age of the latest result",
            "Time since the latest successful drift calculation of each model. The results on the other "
            "dashboards are that old.",
            [
                target(
                    f"time() - max by (model) (drift_monitor_last_success_timestamp_seconds{M})",
                    "{{model}}",
                    instant=True,
                )
            ],
            unit="s",
            steps=thresholds((None, "green"), (1800, "orange"), (3600, "red")),
            decimals=0,
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Rows ingested (5m rate)",
            "Rows per second the monitor accepted per model, averaged over 5 minutes. Zero for 15 minutes "
            "raises DriftMonitorNoDataIngested.",
            [
                target(
                    f"sum by (model) (model:drift_monitor_rows_ingested:rate5m{M})", "{{model}}", instant=True
                )
            ],
            unit="cps",
            steps=thresholds((None, "red"), (1e-9, "green")),
            graph=True,
        ),
        6,
        6,
    )
    layout.add(
        stat(
            "Rows rejected (5m rate)",
            "Rows per second the monitor refused per model, averaged over 5 minutes, all reasons together "
            "(the graph below splits them by reason). Anything above zero means the model service sends "
            "rows that do not match the configured columns.",
            [
                target(
                    f"sum by (model) (model_reason:drift_monitor_rows_rejected:rate5m{M})",
                    "{{model}}",
                    instant=True,
                )
            ],
            unit="cps",
            steps=thresholds((None, "green"), (0.01, "red")),
            graph=True,
        ),
        6,
        6,
    )

    layout.row("Ingestion")
    layout.add(
        timeseries(
            "Rows ingested per second",
            "Rows accepted (HTTP 202) per second and model.",
            [
                target(
                    f"sum by (model) (rate(drift_monitor_rows_ingested_total{M}[$__rate_interval]))",
                    "{{model}}",
                )
            ],
            unit="cps",
            minimum=0,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Rejected rows by reason",
            "Rows refused per second, by model and reason: validation (a value does not fit the configured "
            "column), too_many_rows, body_too_large, bad_request. Any steady rate means the model service "
            "sends data the monitor does not expect.",
            [
                target(
                    f"sum by (model, reason) (rate(drift_monitor_rows_rejected_total{M}[$__rate_interval]))",
                    "{{model}} {{reason}}",
                )
            ],
            unit="cps",
            minimum=0,
            steps=thresholds((None, "green"), (0.01, "red")),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Rejected requests by reason",
            "Ingest requests refused per second, by reason. unknown_model (with an empty model label) means "
            "a client posts to a model name that is not configured.",
            [
                target(
                    "sum by (model, reason) (rate(drift_monitor_requests_rejected_total[$__rate_interval]))",
                    "{{model}} {{reason}}",
                )
            ],
            unit="reqps",
            minimum=0,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Ingest requests per second",
            "Ingest requests handled per second and model (each carries one or more rows).",
            [
                target(
                    "sum by (model) "
                    f"(rate(drift_monitor_ingest_request_duration_seconds_count{M}[$__rate_interval]))",
                    "{{model}}",
                )
            ],
            unit="reqps",
            minimum=0,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Ingest latency p50 / p99",
            "Time to parse, validate and append one ingest request, median and 99th percentile. The model "
            "service waits for this if it posts synchronously.",
            quantile_targets("drift_monitor_ingest_request_duration_seconds", 0.99),
            unit="s",
            minimum=0,
            steps=thresholds((None, "green"), (0.1, "orange"), (0.5, "red")),
        ),
        8,
        8,
    )

    layout.row("Calculations")
    layout.add(
        timeseries(
            "Calculation duration p50 / p99",
            "Wall time of one drift calculation (window snapshot included), median and 99th percentile, "
            "per model. It must stay well below the model's schedule interval.",
            quantile_targets("drift_monitor_calculation_duration_seconds", 0.99),
            unit="s",
            minimum=0,
            steps=thresholds((None, "green"), (30, "orange"), (60, "red")),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Failed calculations",
            "Share of the calculations of the last 30 minutes that failed, per model (the traceback is in "
            "the monitor's log; the last good result stays published). Above 50 % for 15 minutes raises "
            "DriftMonitorCalculationsFailing.",
            [
                target(
                    "max by (model) "
                    f"(model:drift_monitor_calculation_errors_per_calculations:ratio_rate30m{M})",
                    "{{model}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            maximum=1,
            steps=thresholds((None, "green"), (0.5, "red")),
            threshold_style="dashed",
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Result age in schedule intervals",
            "Time since the latest successful calculation divided by the model's schedule interval: about 1 "
            "is normal, above 3 (dashed) for 5 minutes raises DriftMonitorResultsStale.",
            [
                target(
                    f"max without (instance) ((time() - drift_monitor_last_success_timestamp_seconds{M}) "
                    f"/ drift_monitor_schedule_interval_seconds{M})",
                    "{{model}}",
                )
            ],
            unit="none",
            minimum=0,
            decimals=1,
            steps=thresholds((None, "green"), (3, "red")),
            threshold_style="dashed",
        ),
        8,
        8,
    )

    layout.row("Process")
    layout.add(
        timeseries(
            "CPU",
            "CPU used by each drift monitor process, in cores (100 % = one full core). It is a sidecar: this "
            "CPU is taken from the model service. Above 80 % for 15 minutes raises DriftMonitorHighCPU.",
            [
                target(
                    'rate(process_cpu_seconds_total{job="drift-monitor"}[$__rate_interval])', "{{instance}}"
                )
            ],
            unit="percentunit",
            minimum=0,
            steps=thresholds((None, "green"), (0.8, "red")),
            threshold_style="dashed",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Memory",
            "Resident memory of each drift monitor process. It grows with the window size and number of "
            "models, and peaks during calculations. Above 1 GiB for 15 minutes raises "
            "DriftMonitorHighMemory.",
            [target('process_resident_memory_bytes{job="drift-monitor"}', "{{instance}}")],
            unit="bytes",
            minimum=0,
            steps=thresholds((None, "green"), (1073741824, "red")),
            threshold_style="dashed",
        ),
        12,
        8,
    )
    return dashboard(
        "drift-monitor-health",
        "Drift monitor / Monitor health",
        "Is the drift monitor itself working? Scrape status, ingestion, rejected rows, latency, "
        "calculation duration, failures, result staleness, CPU and memory.",
        layout,
        [MODEL_VARIABLE],
    )


DASHBOARDS = {
    "drift-overview.json": drift_overview,
    "data-quality.json": data_quality,
    "model-quality.json": model_quality,
    "monitor-health.json": monitor_health,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output-dir", type=Path, default=HERE, help="where to write the JSON files")
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        (args.output_dir / name).write_text(render(build))
        sys.stdout.write(f"wrote {args.output_dir / name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
