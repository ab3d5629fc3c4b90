"""Replay the bundled diamonds rows against the model service, as production traffic would arrive.

    python -m example_model_service.traffic --service http://127.0.0.1:8080 \\
        --monitor http://127.0.0.1:8000 --scenario sudden_drift --rate 50 --rows 5000 --label-delay 30

Scenarios (rows from datasets/diamonds, cycled when more rows are asked for than a file holds):

  no_drift       production.csv only: the monitor should stay quiet
  sudden_drift   production.csv, then drifted.csv (expensive diamonds only) from halfway on
  gradual_drift  drifted rows mixed in at a share growing from 0 to 1 over the run
  concept_drift  production.csv inputs, but the true prices are 1.5 times higher: only the labels
                 (and so target drift and model quality) change, not the inputs
  bad_data       production.csv with missing values (about 10 % of rows lose a number) and
                 categories the models never saw (about 5 % of rows)

Rows go out in batches (`--batch-size`, default about ten requests a second; a batch of one uses
the single-row form) paced to `--rate` rows per second, to each model of `--model`. With
`--label-delay SECONDS`, the ground truth of every answered row (`price` for the regression,
`expensive` for the classifier, `price_band` for the multiclass one) is posted to the monitor's
labels endpoint that long after its prediction, under the request id the service returned.
Progress goes to stderr; the exit code is 0 when every request was answered with 200, else 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import requests

from example_model_service.models import (
    CATEGORICAL,
    EXPENSIVE_PRICE,
    FEATURES,
    MODEL_NAMES,
    MONITOR_MODELS,
    NUMERICAL,
    ModelName,
    price_band,
)

DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "diamonds"
SCENARIOS = ("no_drift", "sudden_drift", "gradual_drift", "concept_drift", "bad_data")
CONCEPT_DRIFT_PRICE_FACTOR = 1.5
UNSEEN_CATEGORIES = {"cut": "Excellent", "color": "K", "clarity": "I2"}
MISSING_SHARE = 0.10
UNSEEN_SHARE = 0.05


@dataclass(frozen=True)
class Plan:
    """The rows to send, in order: model inputs and the true price of each."""

    rows: list[dict[str, Any]]
    prices: list[float]


def _cycled(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The first `count` rows of `frame`, starting over at its end as often as needed."""
    if frame.empty:
        raise ValueError("no rows to replay")
    return frame.iloc[np.arange(count) % len(frame)].reset_index(drop=True)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{name: _plain(row[name]) for name in FEATURES} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def build_plan(
    scenario: str, count: int, production: pd.DataFrame, drifted: pd.DataFrame, seed: int = 0
) -> Plan:
    """`count` rows of `scenario` (see the module docstring), reproducible for a given seed."""
    rng = np.random.default_rng(seed)
    prices_factor = 1.0
    if scenario in ("no_drift", "concept_drift", "bad_data"):
        frame = _cycled(production, count)
        prices_factor = CONCEPT_DRIFT_PRICE_FACTOR if scenario == "concept_drift" else 1.0
    elif scenario == "sudden_drift":
        half = count // 2
        frame = pd.concat([_cycled(production, half), _cycled(drifted, count - half)], ignore_index=True)
    elif scenario == "gradual_drift":
        share = np.linspace(0.0, 1.0, count) if count > 1 else np.ones(count)
        use_drifted = rng.random(count) < share
        calm, shifted = _cycled(production, count), _cycled(drifted, count)
        frame = pd.concat([calm[~use_drifted], shifted[use_drifted]]).sort_index()
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    rows = _records(frame)
    if scenario == "bad_data":
        _spoil(rows, rng)
    prices = [float(p) * prices_factor for p in frame["price"].to_numpy(dtype=float)]
    return Plan(rows, prices)


def _spoil(rows: list[dict[str, Any]], rng: np.random.Generator) -> None:
    """Blank a number in ~10 % of rows and put an unseen category in ~5 % (in place)."""
    for row in rows:
        if rng.random() < MISSING_SHARE:
            row[NUMERICAL[int(rng.integers(len(NUMERICAL)))]] = None
        if rng.random() < UNSEEN_SHARE:
            column = CATEGORICAL[int(rng.integers(len(CATEGORICAL)))]
            row[column] = UNSEEN_CATEGORIES[column]


def label_of(model: ModelName, price: float) -> float | int | str:
    """The ground truth the monitor expects: the price, 1/0 for expensive (>= 5,000), or the band."""
    if model == "regression":
        return round(price, 2)
    if model == "price_band":
        return str(price_band(price))
    return int(price >= EXPENSIVE_PRICE)


def batches(count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, size):
        yield start, min(start + size, count)


class Progress:
    """A one-line progress bar on stderr, redrawn with `\\r` at most ten times a second (every five
    seconds when stderr is not a terminal, e.g. in `docker compose logs`)."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()
        self.interval = 0.1 if stream.isatty() else 5.0
        self._drawn = 0.0

    def update(self, done: int, errors: int, labels: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < self.interval):
            return
        self._drawn = now
        share = done / self.total if self.total else 1.0
        filled = int(share * 30)
        rate = done / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} rows {share:4.0%} "
            f"{rate:7.1f} rows/s  errors {errors}  labels {labels} "
        )
        self.stream.flush()

    def finish(self, done: int, errors: int, labels: int) -> None:
        self.update(done, errors, labels, force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Outcome:
    rows_sent: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    labels_posted: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class LabelSink:
    """Posts labels to the monitor once they are due, through MonitorClient (batched, retried)."""

    def __init__(self, monitor_url: str, token: str | None, delay: float) -> None:
        from monitor_service.client import MonitorClient

        self.client = MonitorClient(monitor_url, token=token, flush_interval=0.5)
        self.delay = delay
        self._due: deque[tuple[float, str, list[dict[str, Any]]]] = deque()
        self.posted = 0

    def add(self, monitor_model: str, labels: list[dict[str, Any]]) -> None:
        self._due.append((time.monotonic() + self.delay, monitor_model, labels))

    def post_due(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, model, labels = self._due.popleft()
            self.client.send_labels(model, labels)
            self.posted += len(labels)

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None

    def close(self, timeout: float, *, wait_for_due: bool = True) -> Any:
        """Post the labels still waiting (sleeping until each is due), then flush and close."""
        while wait_for_due and (due := self.next_due()) is not None:
            time.sleep(max(0.0, due - time.monotonic()))
            self.post_due(time.monotonic())
        self.client.close(timeout)
        return self.client.stats()


def wait_until_ready(service: str, timeout: float, session: requests.Session) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if session.get(f"{service}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            raise SystemExit(f"{service}/readyz did not answer 200 within {timeout:.0f}s")
        time.sleep(0.25)


def _post(
    session: requests.Session, url: str, rows: list[dict[str, Any]], outcome: Outcome
) -> list[str] | None:
    """POST rows (the single-row form for one); the request ids in row order, or None on failure."""
    body: dict[str, Any] = rows[0] if len(rows) == 1 else {"rows": rows}
    try:
        response = session.post(url, json=body, timeout=30)
    except requests.RequestException as exc:
        reason = type(exc).__name__
    else:
        if response.status_code == 200:
            answer = response.json()
            outcome.requests_ok += 1
            if len(rows) == 1:
                return [answer["request_id"]]
            return [p["request_id"] for p in answer["predictions"]]
        reason = f"HTTP {response.status_code}"
    outcome.requests_failed += 1
    outcome.failures[reason] = outcome.failures.get(reason, 0) + 1
    return None


def replay(
    plan: Plan,
    *,
    service: str,
    models: tuple[ModelName, ...],
    rate: float,
    batch_size: int,
    labels: LabelSink | None,
    progress: Progress,
    session: requests.Session,
) -> Outcome:
    """Send the plan paced to `rate` rows/s; queue labels for every answered row."""
    outcome = Outcome()
    started = time.monotonic()
    for start, end in batches(len(plan.rows), batch_size):
        due = started + start / rate
        while (now := time.monotonic()) < due:
            if labels is not None:
                labels.post_due(now)
            time.sleep(min(due - now, 0.05))
        rows = plan.rows[start:end]
        for model in models:
            ids = _post(session, f"{service}/predict/{model}", rows, outcome)
            if ids is not None and labels is not None:
                truth = [label_of(model, p) for p in plan.prices[start:end]]
                items = [{"id": i, "target": t} for i, t in zip(ids, truth, strict=True)]
                labels.add(MONITOR_MODELS[model], items)
        outcome.rows_sent = end
        if labels is not None:
            labels.post_due(time.monotonic())
        progress.update(end, outcome.requests_failed, labels.posted if labels else 0)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_model_service.traffic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--service", required=True, help="model service base URL")
    parser.add_argument("--monitor", default=None, help="drift monitor base URL (for --label-delay)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="no_drift")
    parser.add_argument("--rate", type=float, default=50.0, help="rows per second (default 50)")
    parser.add_argument("--rows", type=int, default=1000, help="rows to send (default 1000)")
    parser.add_argument(
        "--model", choices=[*MODEL_NAMES, "all", "both"], default="all", help="both: an old name of all"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="rows per request (default: rate/10)")
    parser.add_argument(
        "--label-delay", type=float, default=None, help="post ground-truth labels this many seconds later"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of gradual_drift and bad_data")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="production.csv and drifted.csv")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the service's /readyz")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.rows <= 0 or (args.batch_size is not None and args.batch_size <= 0):
        parser.error("--rate, --rows and --batch-size must be positive")
    if args.label_delay is not None and (args.label_delay < 0 or not args.monitor):
        parser.error("--label-delay needs --monitor and a delay >= 0")
    batch_size = args.batch_size or max(1, min(100, round(args.rate / 10)))
    models: tuple[ModelName, ...] = MODEL_NAMES if args.model in ("all", "both") else (args.model,)
    service = args.service.rstrip("/")

    production = pd.read_csv(args.data_dir / "production.csv")
    drifted = pd.read_csv(args.data_dir / "drifted.csv")
    plan = build_plan(args.scenario, args.rows, production, drifted, args.seed)
    session = requests.Session()
    wait_until_ready(service, args.wait, session)
    labels = None
    if args.label_delay is not None:
        labels = LabelSink(args.monitor.rstrip("/"), os.environ.get("MONITOR_TOKEN"), args.label_delay)
    progress = Progress(args.rows, args.scenario, enabled=not args.quiet)
    try:
        outcome = replay(
            plan,
            service=service,
            models=models,
            rate=args.rate,
            batch_size=batch_size,
            labels=labels,
            progress=progress,
            session=session,
        )
    except BaseException:
        if labels is not None:
            labels.close(timeout=2.0, wait_for_due=False)
        raise
    progress.finish(outcome.rows_sent, outcome.requests_failed, labels.posted if labels else 0)
    stats = labels.close(timeout=10.0) if labels is not None else None
    summary = (
        f"{args.scenario}: {outcome.rows_sent} rows to {', '.join(models)}, "
        f"{outcome.requests_ok} requests ok, {outcome.requests_failed} failed {outcome.failures or ''}"
    )
    if labels is not None:
        summary += f"; {labels.posted} labels posted after {args.label_delay:g}s (client: {stats})"
    sys.stderr.write(summary.rstrip() + "\n")
    return 0 if outcome.requests_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
