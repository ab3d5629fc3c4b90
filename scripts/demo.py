#!/usr/bin/env python3
"""One-command local demo, without Docker: the drift monitor, the example model service and a
traffic scenario on 127.0.0.1, with a live summary of what the monitor sees.

    python scripts/demo.py                       # or: make demo
    python scripts/demo.py --scenario gradual_drift --rate 200 --rows 12000
    make demo ARGS="--scenario concept_drift --rate 100"

Starts, as child processes of this script (each in its own session, stopped by PID):

  1. the monitor, `python -m monitor_service serve`, with config/stack.yaml rewritten into a
     temporary file: host 127.0.0.1, a short schedule (`--schedule` 5s, `--min-rows` 200) and a short
     window (`--window-rows` 2000, 10 s of the default traffic: dataset drift needs about 70 % drifted
     rows in the window, which stack.yaml's 5,000 rows reach only after 7,000 rows of a sudden drift)
     for both models, absolute reference paths;
  2. the example model service, `python -m example_model_service --monitor-url ... --port ...`;
  3. once both answer /readyz, the traffic generator, `python -m example_model_service.traffic`
     (`--scenario`, `--rate`, `--rows`, `--label-delay` are passed through).

Ports: 8000 (monitor) and 8080 (model service) when free, otherwise free ports picked by the OS;
`--monitor-port` / `--service-port` force them. Every `--refresh` seconds the monitor's
`GET /v1/models/{model}/results` is printed as a block (on a terminal the screen is redrawn, unless
`--no-clear`). When the scenario ends the services keep running, and the summary refreshing, until
Ctrl-C or SIGTERM; with `--exit-after-traffic` the script instead waits for a calculation that covers
the whole scenario, prints it and stops. The children's logs go to a temporary directory (printed at
the start; `--log-dir` to choose it).

Exit code: 0 after Ctrl-C/SIGTERM or a finished `--exit-after-traffic` run with every child stopped
cleanly; 1 when a child dies or fails (its log tail is printed), a service does not get ready, or no
calculation covers the scenario in time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from monitor_service.child_processes import (
    LOOPBACK,
    RunningProcess,
    answers,
    free_port,
    port_is_free,
    start_process,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_CONFIG = REPO_ROOT / "config" / "stack.yaml"
DEFAULT_MONITOR_PORT = 8000
DEFAULT_SERVICE_PORT = 8080
SCENARIOS = ("no_drift", "sudden_drift", "gradual_drift", "concept_drift", "bad_data")
# The model service sends its rows to the monitor at least once a second (Settings.
# monitor_flush_interval): a calculation that starts this long after the traffic ended sees them all.
SETTLE_SECONDS = 2.0
STOP_TIMEOUT = 15.0
# Settings the children would otherwise pick up from this environment and that would point them
# elsewhere (other ports, tokens, a durable data directory): the demo is self-contained.
_DROPPED_ENV = ("MONITOR_URL", "MONITOR_TOKEN", "HOST", "PORT")
_DROPPED_ENV_PREFIX = "DRIFT_MONITOR_"
_CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --- ports and configuration ------------------------------------------------------------------


def pick_port(requested: int | None, default: int, taken: set[int]) -> int:
    """`requested` as given; else `default` when free; else a free port chosen by the OS."""
    if requested is not None:
        return requested
    if default not in taken and port_is_free(default):
        return default
    while (port := free_port()) in taken:
        pass
    return port


def demo_config(
    port: int,
    *,
    every: str,
    min_rows: int,
    window_rows: int | None = None,
    executor: str | None = None,
    source: Path = STACK_CONFIG,
) -> dict[str, Any]:
    """config/stack.yaml on 127.0.0.1:`port` with schedule `{every, min_rows}` for every model,
    absolute reference paths (so the file can live in a temporary directory) and, when given, a
    window of `window_rows` rows and another executor."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    config["server"].update(host=LOOPBACK, port=port)
    if executor:
        config["server"]["executor"] = executor
    for model in config["models"]:
        model["reference"] = str((source.parent / model["reference"]).resolve())
        model["schedule"] = {"every": every, "min_rows": min_rows}
        if window_rows is not None:
            model.setdefault("window", {})["max_rows"] = window_rows
    return config


def child_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and not k.startswith(_DROPPED_ENV_PREFIX)
    }


# --- child processes --------------------------------------------------------------------------


class Stopper:
    """SIGINT/SIGTERM set a flag the main loop polls; a second one hurries the shutdown along."""

    def __init__(self) -> None:
        self.signals = 0
        self.name = ""

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        self.name = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        return self.signals > 0

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when a signal arrives."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))


class Child(RunningProcess):
    """A service or the traffic generator, as the demo runs it."""

    stopped_by_us: bool = False

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def last_line(self) -> str:
        """The last non-empty line of the log (progress bars redraw with \\r: the latest state)."""
        lines = [line.strip() for line in self.log_tail(2000).splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def stop_for(self, stopper: Stopper, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM to this PID, SIGKILL after `timeout` s or at a second Ctrl-C; the exit code."""
        if self.popen.poll() is None:
            self.stopped_by_us = True
        signals_before = stopper.signals
        return self.stop(timeout=timeout, hurry=lambda: stopper.signals > max(signals_before, 1))


def start_child(name: str, args: Sequence[str], log_dir: Path) -> Child:
    """Start `args` in its own session (a terminal's Ctrl-C reaches only this script, which then
    stops the children in order; each dies with this script even when it is killed), stdout and
    stderr to `log_dir/<name>.log`."""
    started = start_process(
        name,
        args,
        log_dir / f"{name}.log",
        env=child_env(),
        cwd=REPO_ROOT,
        own_session=True,
        die_with_parent=True,  # safe: this script starts no threads
    )
    return Child(started.name, started.args, started.popen, started.log_path)


class ChildFailed(Exception):
    def __init__(self, child: Child, what: str) -> None:
        super().__init__(f"{child.name} (pid {child.pid}) {what}")
        self.child = child


# --- HTTP -------------------------------------------------------------------------------------


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Snapshot:
    """What the monitor said at one refresh: per model, GET /v1/models/{model}/results."""

    models: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def fetch(monitor_url: str) -> Snapshot:
    try:
        listing = get_json(f"{monitor_url}/v1/models")
        models = [get_json(f"{monitor_url}/v1/models/{m['name']}/results") for m in listing["models"]]
    except (OSError, ValueError, KeyError) as exc:
        return Snapshot(error=f"{type(exc).__name__}: {exc}")
    return Snapshot(models=models)


# --- the summary ------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _column_drift(column: dict[str, Any]) -> str:
    verdict = "yes" if column["detected"] else "no"
    test = f"{column['stattest']} {_num(column['score'])}, threshold {_num(column['threshold'])}"
    return f"{column['column']}: {verdict} ({test})"


QUALITY_NAMES = {
    "mae": "MAE",
    "rmse": "RMSE",
    "mape": "MAPE %",
    "r2": "R²",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    **{
        f"{m}_{a}": f"{m.upper() if m == 'f1' else m} {a}"
        for m in ("precision", "recall", "f1")
        for a in ("macro", "weighted")
    },
}
LOWER_IS_BETTER = {"mae", "rmse", "mape"}


def _interval(item: dict[str, Any]) -> str:
    return f"{_num(item['value'])} [{_num(item['lower'])}, {_num(item['upper'])}]"


def _verdict(metric: str, item: dict[str, Any], baseline: float | None) -> str:
    """How the interval stands against the baseline (what the quality alert looks at)."""
    if baseline is None or item["lower"] is None or item["upper"] is None:
        return ""
    worse = item["lower"] > baseline if metric in LOWER_IS_BETTER else item["upper"] < baseline
    better = item["upper"] < baseline if metric in LOWER_IS_BETTER else item["lower"] > baseline
    return "  WORSE than the baseline" if worse else ("  better than the baseline" if better else "")


def render_quality(result: dict[str, Any]) -> list[str]:
    """Model quality lines: each metric with its interval, baseline and estimate; what was not
    computed and why; label-arrival bias."""
    detail = result.get("model_quality_detail")
    if not detail:
        return []
    baselines = {b["metric"]: b for b in detail["baseline"]}
    estimated = {e["metric"]: e for e in detail["estimated"]}
    source = sorted({b["source"] for b in detail["baseline"]})
    head = f"on {detail['labelled_rows']} labelled rows, {detail['confidence']:.0%} intervals"
    if source:
        head += f", baseline from the {' and '.join(source)}"
    lines = [f"  quality        {head}"]
    shown = {m["metric"]: m for m in detail["metrics"]}
    reasons = {s["metric"]: s["reason"] for s in detail["skipped"]}
    for metric in [*shown, *(m for m in estimated if m not in shown)]:
        parts = [f"    {QUALITY_NAMES.get(metric, metric):<13}"]
        parts.append(_interval(shown[metric]) if metric in shown else f"({reasons.get(metric, 'no value')})")
        if metric in baselines:
            parts.append(f"baseline {_num(baselines[metric]['value'])}")
        if metric in estimated:
            parts.append(f"estimated {_interval(estimated[metric])}")
        verdict = (
            _verdict(metric, shown[metric], baselines.get(metric, {}).get("value")) if metric in shown else ""
        )
        lines.append("   ".join(parts) + verdict)
    skipped = [
        f"{QUALITY_NAMES.get(s['metric'], s['metric'])}: {s['reason']}"
        for s in detail["skipped"]
        if s["metric"] not in estimated  # already on its own line
    ]
    skipped += [f"baseline {s['metric']}: {s['reason']}" for s in detail["baseline_skipped"]]
    if skipped:
        lines.append(f"  not computed   {'; '.join(skipped)}")
    bias = result.get("label_bias")
    if bias and bias["detected"]:
        shares = ", ".join(f"{g['group']} {g['labelled'] / g['rows']:.0%}" for g in bias["groups"])
        lines.append(
            f"  label bias     labelled share per predicted group: {shares}: target drift not reported"
        )
    return lines


def render_model(model: dict[str, Any], monitor_url: str, now: float) -> list[str]:
    """The summary lines of one model, from its GET /v1/models/{model}/results."""
    name, task = model["name"], model["task"]
    lines = [f"{name}  ({task})"]
    result: dict[str, Any] | None = model.get("result")
    window = f"{model['window_rows']} / {model['window_max_rows']} rows"
    if model["status"] == "failed":
        attempt = _age(now - (model.get("last_attempt_at") or now))
        last = f"last calculation FAILED {attempt} ago ({model['errors']} of {model['calculations']} failed)"
    elif model.get("last_success_at"):
        last = f"last calculation {_age(now - model['last_success_at'])} ago (#{model['calculations']})"
    elif model["window_rows"] < model["min_rows"]:
        last = f"no calculation yet: waits for {model['min_rows']} rows"
    else:
        last = f"first calculation within {_num(model['schedule_every_seconds'])}s"
    lines.append(f"  window         {window}   {last}")
    if model["status"] == "failed":
        error = str(model.get("last_error") or "").strip().splitlines()
        lines.append(f"  error          {error[-1][:150] if error else '?'}")
        if result is not None:
            age = _age(now - result["finished_at"])
            lines.append(f"  (below: the last good result, {age} old)")
    if result is not None:
        drift = result["dataset_drift"]
        verdict = "n/a" if drift is None else ("YES" if drift else "no")
        if result.get("drift_share") is None:  # tested mode: the domain classifier, no share rule
            rule = f"domain classifier AUC {_num((result.get('classifier') or {}).get('auc'))}"
        else:
            rule = f"dataset drift at a share >= {_num(result['drift_share'])}"
        lines.append(
            f"  dataset drift  {verdict}   {result['drifted_columns']} of {result['tested_columns']} "
            f"features drifted ({rule}), {result['current_rows']} rows"
        )
        columns = result["columns"]
        drifted = [c["column"] for c in columns if c["role"] == "feature" and c["detected"]]
        lines.append(f"  drifted        {', '.join(drifted) if drifted else '-'}")
        targets = [_column_drift(c) for c in columns if c["role"] == "target"]
        skipped = [f"{s['column']}: {s['reason']}" for s in result["skipped"] if s["role"] == "target"]
        lines.append(f"  target drift   {'; '.join(targets + skipped) or 'no labels in the window yet'}")
        predictions = [_column_drift(c) for c in columns if c["role"] == "prediction"]
        lines.append(f"  pred. drift    {'; '.join(predictions) or '-'}")
        lines.extend(render_quality(result))
    lines.append(f"  report         {monitor_url}/v1/models/{name}/report")
    return lines


def render(
    snapshot: Snapshot,
    *,
    monitor_url: str,
    service_url: str,
    children: Sequence[Child],
    traffic: str,
    log_dir: Path,
    title: str,
    now: float | None = None,
) -> str:
    """One summary block (plain text)."""
    now = time.time() if now is None else now
    lines = [f"=== drift-monitor demo · {title} · {time.strftime('%H:%M:%S', time.localtime(now))} ==="]
    lines.append(f"traffic  {traffic}")
    if snapshot.error:
        lines.append(f"monitor not answering: {snapshot.error}")
    for model in snapshot.models:
        lines.extend(render_model(model, monitor_url, now))
    lines.append(
        f"monitor  {monitor_url}/docs   metrics {monitor_url}/metrics   models {monitor_url}/v1/models"
    )
    lines.append(f"service  {service_url}/docs")
    pids = ", ".join(f"{c.name} {c.pid}" for c in children)
    lines.append(f"logs     {log_dir}   (pids: {pids})")
    return "\n".join(lines)


def fresh_after(snapshot: Snapshot, since: float) -> bool:
    """Every model has a calculation that started at `since` or later, or a failed attempt since
    then (shown with its error: the last good result stays published)."""
    if snapshot.error or not snapshot.models:
        return False
    for model in snapshot.models:
        result = model.get("result")
        if result is not None and result["finished_at"] - result["duration_seconds"] >= since:
            continue
        if model.get("status") == "failed" and (model.get("last_attempt_at") or 0.0) >= since:
            continue
        return False
    return True


# --- the run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="sudden_drift")
    parser.add_argument("--rate", type=float, default=200.0, help="rows per second (default 200)")
    parser.add_argument("--rows", type=int, default=6000, help="rows to send to each model (default 6000)")
    parser.add_argument(
        "--label-delay",
        type=float,
        default=2.0,
        help="seconds until the ground truth of a row is posted to the monitor (default 2; <0: none)",
    )
    parser.add_argument(
        "--schedule", default="5s", help="time between scheduled calculations, e.g. 5s (default 5s)"
    )
    parser.add_argument(
        "--min-rows", type=int, default=200, help="rows a window needs before calculating (default 200)"
    )
    parser.add_argument(
        "--window-rows",
        type=int,
        default=2000,
        help="rows in each model's window (default 2000, so the window moves past a sudden drift within "
        "seconds and dataset drift shows; 0: config/stack.yaml's 5000)",
    )
    parser.add_argument(
        "--executor",
        choices=("process", "thread"),
        default=None,
        help="where the monitor calculates (default: config/stack.yaml's, process)",
    )
    parser.add_argument(
        "--monitor-port", type=int, default=None, help="monitor port (default 8000 if free, else any)"
    )
    parser.add_argument(
        "--service-port", type=int, default=None, help="model service port (default 8080 if free, else any)"
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="the model service's trained models")
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between summaries (default 2)")
    parser.add_argument("--no-clear", action="store_true", help="never clear the screen between summaries")
    parser.add_argument("--log-dir", type=Path, default=None, help="logs and config (default: a temp dir)")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for both services' /readyz (the first start trains the models; default 300)",
    )
    parser.add_argument(
        "--exit-after-traffic",
        action="store_true",
        help="stop once the scenario is over and a calculation covers it (for tests and scripts)",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.rows <= 0 or args.min_rows <= 0 or args.refresh <= 0 or args.window_rows < 0:
        parser.error("--rate, --rows, --min-rows and --refresh must be positive, --window-rows >= 0")
    return args


class Demo:
    def __init__(self, args: argparse.Namespace, stopper: Stopper) -> None:
        self.args = args
        self.stopper = stopper
        self.log_dir: Path = args.log_dir or Path(tempfile.mkdtemp(prefix="drift-monitor-demo-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        monitor_port = pick_port(args.monitor_port, DEFAULT_MONITOR_PORT, set())
        service_port = pick_port(args.service_port, DEFAULT_SERVICE_PORT, {monitor_port})
        self.monitor_url = f"http://{LOOPBACK}:{monitor_port}"
        self.service_url = f"http://{LOOPBACK}:{service_port}"
        self.monitor_port, self.service_port = monitor_port, service_port
        self.children: list[Child] = []
        self.services: list[Child] = []
        self.traffic: Child | None = None
        self.traffic_ended_at: float | None = None  # wall clock, to compare with the monitor's times
        self.clear = sys.stdout.isatty() and not args.no_clear

    # processes

    def start_services(self) -> None:
        py = sys.executable
        config_path = self.log_dir / "monitor.yaml"
        config = demo_config(
            self.monitor_port,
            every=self.args.schedule,
            min_rows=self.args.min_rows,
            window_rows=self.args.window_rows or None,
            executor=self.args.executor,
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        first = config["models"][0]
        _say(
            f"monitor config {config_path}: every model calculates every {first['schedule']['every']} "
            f"from {first['schedule']['min_rows']} rows on, window {first['window']['max_rows']} rows, "
            f"executor {config['server'].get('executor', 'process')}"
        )
        window_seconds = first["window"]["max_rows"] / self.args.rate
        if 0 <= self.args.label_delay and window_seconds <= self.args.label_delay:
            _say(
                f"note: at {self.args.rate:g} rows/s a row leaves the window after {window_seconds:.1f}s, "
                f"before its label comes ({self.args.label_delay:g}s): no target drift nor model quality; "
                "raise --window-rows or lower --label-delay"
            )
        monitor = start_child(
            "monitor",
            [
                py,
                "-m",
                "monitor_service",
                "serve",
                "--config",
                str(config_path),
                *self._listen(self.monitor_port),
            ],
            self.log_dir,
        )
        self._started(monitor, self.monitor_url)
        service_args = [py, "-m", "example_model_service", "--monitor-url", self.monitor_url]
        service_args += self._listen(self.service_port)
        if self.args.model_dir is not None:
            service_args += ["--model-dir", str(self.args.model_dir)]
        self._started(start_child("service", service_args, self.log_dir), self.service_url)

    @staticmethod
    def _listen(port: int) -> list[str]:
        return ["--host", LOOPBACK, "--port", str(port)]

    def _started(self, child: Child, url: str) -> None:
        self.children.append(child)
        if child.name != "traffic":
            self.services.append(child)
        _say(f"started {child.name} (pid {child.pid}) on {url}, log {child.log_path}")

    def wait_ready(self) -> bool:
        """Both services answer /readyz; False when a signal came first."""
        deadline = time.monotonic() + self.args.ready_timeout
        urls = {"monitor": self.monitor_url, "service": self.service_url}
        pending = {c.name: f"{urls[c.name]}/readyz" for c in self.services}
        while pending:
            if self.stopper.requested:
                return False
            self.check_services()
            for name, url in list(pending.items()):
                if answers(url):
                    _say(f"{name} ready ({url})")
                    del pending[name]
            if pending and time.monotonic() >= deadline:
                child = next(c for c in self.services if c.name in pending)
                raise ChildFailed(child, f"not ready within {self.args.ready_timeout:g}s")
            self.stopper.sleep(0.2)
        return True

    def start_traffic(self) -> None:
        args = [sys.executable, "-m", "example_model_service.traffic"]
        args += ["--service", self.service_url, "--monitor", self.monitor_url]
        args += ["--scenario", self.args.scenario, "--rate", f"{self.args.rate:g}"]
        args += ["--rows", str(self.args.rows)]
        if self.args.label_delay >= 0:
            args += ["--label-delay", f"{self.args.label_delay:g}"]
        self.traffic = start_child("traffic", args, self.log_dir)
        self._started(self.traffic, f"{self.service_url} ({self.args.scenario})")

    def check_services(self) -> None:
        for child in self.services:
            code = child.exit_code()
            if code is not None:
                raise ChildFailed(child, f"exited with {code}")

    def check_traffic(self) -> None:
        """Note when the traffic ends; a failed run is a failure of the demo."""
        if self.traffic is None or self.traffic_ended_at is not None:
            return
        code = self.traffic.exit_code()
        if code is None:
            return
        self.traffic_ended_at = time.time()
        if code != 0:
            raise ChildFailed(self.traffic, f"exited with {code}")
        _say(f"traffic finished: {self.traffic.last_line()}")

    def stop_all(self) -> bool:
        """Stop every child by PID, newest first (the traffic, the service, then the monitor it
        reports to); True when each one that was still running exited cleanly."""
        clean = True
        for child in reversed(self.children):
            code = child.stop_for(self.stopper)
            how = " (killed)" if child.killed else ""
            _say(f"stopped {child.name} (pid {child.pid}): exit {code}{how}")
            if child.killed or (child in self.services and child.stopped_by_us and code != 0):
                clean = False
                _print_tail(child)
        return clean

    # the summary

    def traffic_status(self) -> str:
        if self.traffic is None:
            return f"{self.args.scenario}: waiting for the services"
        line = self.traffic.last_line()
        if self.traffic_ended_at is None:
            return f"running (pid {self.traffic.pid}): {line or self.args.scenario}"
        return f"finished: {line.split(' (client:')[0]}"

    def show(self, snapshot: Snapshot, title: str) -> None:
        block = render(
            snapshot,
            monitor_url=self.monitor_url,
            service_url=self.service_url,
            children=self.children,
            traffic=self.traffic_status(),
            log_dir=self.log_dir,
            title=title,
        )
        sys.stdout.write((_CLEAR_SCREEN + block + "\n") if self.clear else (block + "\n\n"))
        sys.stdout.flush()

    def loop(self) -> int:
        """Refresh the summary until a signal (or, with --exit-after-traffic, a calculation that
        covers the whole scenario)."""
        next_refresh = time.monotonic()
        settle_deadline: float | None = None
        while not self.stopper.requested:
            self.check_services()
            self.check_traffic()
            if self.args.exit_after_traffic and self.traffic_ended_at is not None:
                if settle_deadline is None:
                    every = _seconds(self.args.schedule)
                    settle_deadline = time.monotonic() + SETTLE_SECONDS + 3 * every + 30.0
                snapshot = fetch(self.monitor_url)
                if fresh_after(snapshot, self.traffic_ended_at + SETTLE_SECONDS):
                    self.show(snapshot, "final summary")
                    return 0
                if time.monotonic() >= settle_deadline:
                    self.show(snapshot, "final summary (stale)")
                    _say("no calculation covered the whole scenario in time (are --rows >= --min-rows?)")
                    return 1
            if time.monotonic() >= next_refresh:
                self.show(fetch(self.monitor_url), "live")
                next_refresh = time.monotonic() + self.args.refresh
            self.stopper.sleep(0.2)
        _say(f"{self.stopper.name}: stopping")
        return 0


def _seconds(duration: str) -> float:
    """Seconds of a duration as the monitor's config reads it (`5s`, `500ms`, `1m`)."""
    from monitor_service.config import parse_duration

    return parse_duration(duration)


def _print_tail(child: Child) -> None:
    _say(f"--- last lines of {child.log_path} ---")
    _say(child.log_tail().rstrip())
    _say("---")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        _seconds(args.schedule)
    except ValueError as exc:
        _say(f"--schedule: {exc}")
        return 2
    stopper = Stopper()
    stopper.install()
    demo = Demo(args, stopper)
    _say(f"drift-monitor demo: logs and config in {demo.log_dir}")
    status = 1
    try:
        demo.start_services()
        if demo.wait_ready():
            demo.start_traffic()
            _say(f"summary every {args.refresh:g}s; Ctrl-C stops everything")
            status = demo.loop()
        else:
            status = 0
    except ChildFailed as exc:
        _say(f"error: {exc}")
        _print_tail(exc.child)
        status = 1
    finally:
        clean = demo.stop_all()
    if status == 0 and not clean:
        status = 1
    _say(f"logs kept in {demo.log_dir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
