"""`scripts/demo.py` end to end: the monitor, the model service and a sudden drift scenario on
loopback; the final summary must show the drift, and every process the demo started (its children
and theirs, e.g. the monitor's calculation worker) must be gone when it exits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"
DEADLINE = 75.0
GRACE = 5.0
FINAL_MARKER = "=== drift-monitor demo · final summary ·"
LIVE_MARKER = "=== drift-monitor demo · live ·"
# Started as (pid N) lines: the demo's three children.
STARTED = re.compile(r"^started (monitor|service|traffic) \(pid (\d+)\)", re.MULTILINE)

# A Linux process: (pid, start time in clock ticks since boot), so a reused PID is not mistaken
# for a survivor.
Process = tuple[int, int]


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) of `pid` from /proc, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)", which may hold spaces
    return int(fields[1]), int(fields[19]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _descendants(root: int) -> dict[Process, str]:
    """Every process below `root` right now (children, grandchildren, ...) with its command line."""
    parents: dict[int, list[Process]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: dict[Process, str] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = _cmdline(child[0])
                todo.append(child[0])
    return found


def _still_there(process: Process) -> bool:
    """The same process (pid and start time) still exists, as a zombie too."""
    stat = _stat(process[0])
    return stat is not None and stat[1] == process[1]


def _env() -> dict[str, str]:
    drop = ("MONITOR_URL", "MONITOR_TOKEN", "MODEL_DIR", "HOST", "PORT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DRIFT_MONITOR_")}


def _run_demo(
    args: list[str], out: Path, *, until: str | None = None, then: signal.Signals = signal.SIGTERM
) -> tuple[int, str, dict[Process, str]]:
    """Run the demo with `args` (stdout and stderr to `out`), collecting its descendants while it
    runs; when `until` is given, send `then` once that text is in the output. Returns the exit
    code, the output and every descendant seen."""
    seen: dict[Process, str] = {}
    track = Path("/proc/self/stat").exists()
    with out.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, str(DEMO), *args],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=_env(),
        )
    deadline = time.monotonic() + DEADLINE
    signalled = False
    try:
        while demo.poll() is None:
            if track:
                for process, cmdline in _descendants(demo.pid).items():
                    seen.setdefault(process, cmdline)
            if until is not None and not signalled and until in out.read_text(errors="replace"):
                demo.send_signal(then)
                signalled = True
            if time.monotonic() > deadline:
                pytest.fail(f"the demo ran longer than {DEADLINE:.0f}s:\n{out.read_text()[-6000:]}")
            time.sleep(0.2)
    finally:
        if demo.poll() is None:
            demo.terminate()
            try:
                demo.wait(timeout=20)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
    output = out.read_text(errors="replace")
    if until is not None:
        assert signalled, f"{until!r} never appeared:\n{output[-6000:]}"
    return demo.returncode, output, seen


def _assert_nothing_left(output: str, seen: dict[Process, str]) -> None:
    started = {name: int(pid) for name, pid in STARTED.findall(output)}
    assert set(started) == {"monitor", "service", "traffic"}, output[-6000:]
    for name, pid in started.items():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert re.search(rf"^stopped {name} \(pid {pid}\): exit \S+$", output, re.MULTILINE), output[-3000:]
    if Path("/proc/self/stat").exists():
        assert {pid for pid, _ in seen} >= set(started.values()), "the demo's children were seen running"
        # Grace for the grandchildren that exit on their own once their parent is gone (the
        # multiprocessing resource tracker of the monitor's worker reads EOF and exits).
        deadline = time.monotonic() + GRACE
        while (left := [p for p in seen if _still_there(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, "processes left behind:\n" + "\n".join(f"{p[0]}: {seen[p]}" for p in left)


def _has_line(pattern: str, text: str) -> bool:
    """Some line of `text` starts with a match of `pattern`."""
    return re.search(f"^{pattern}", text, re.MULTILINE) is not None


def _section(block: str, model: str) -> str:
    """The lines of `model` in one summary block."""
    start = block.index(f"\n{model}  (")
    end = block.find("\nmonitor  ", start)
    following = block.find("\ndiamonds_", start + 1)
    return block[start : min(e for e in (end, following) if e != -1)]


def test_demo_shows_sudden_drift_and_stops_every_process(tmp_path: Path) -> None:
    code, output, seen = _run_demo(
        [
            "--exit-after-traffic",
            "--rows", "1200",
            "--rate", "3000",
            "--scenario", "sudden_drift",
            "--label-delay", "1",
            "--schedule", "1s",
            # The newest 650 rows: the 600 drifted ones and 50 before them. With about 70 % drifted
            # rows or more, 5 of the 9 features drift (carat, x, y, z and table, the closest:
            # normed Wasserstein 0.14 against its 0.1 threshold); with the 5,000 rows of
            # config/stack.yaml the window would hold 50 % and only 4 drift. The 50 production
            # rows keep both classes in the classifier's labels.
            "--window-rows", "650",
            "--refresh", "1",
            "--no-clear",
            "--log-dir", str(tmp_path / "logs"),
        ],
        tmp_path / "demo.out",
    )  # fmt: skip
    assert code == 0, output[-6000:]
    assert output.count(FINAL_MARKER) == 1, output[-6000:]
    final = output.split(FINAL_MARKER, 1)[1]
    regression = _section(final, "diamonds_regression")
    assert _has_line(r"  dataset drift  YES ", regression), regression
    assert _has_line(r"  drifted        .*\bcarat\b", regression), regression
    assert _has_line(
        r"  quality        on \d+ labelled rows, 95% intervals, baseline from the reference", regression
    )
    assert _has_line(r"    MAE +\S+ \[\S+, \S+\] +baseline \S+", regression), regression
    assert _has_line(r"  report         http://127\.0\.0\.1:\d+/v1/models/diamonds_regression/", regression)
    assert _has_line(r"monitor  http://127\.0\.0\.1:\d+/docs +metrics http://\S+/metrics", final), final
    assert _has_line(r"service  http://127\.0\.0\.1:\d+/docs", final), final
    assert "traffic  finished: sudden_drift: 1200 rows" in final, final
    for name in ("monitor", "service", "traffic"):
        assert (tmp_path / "logs" / f"{name}.log").is_file()
    _assert_nothing_left(output, seen)


def test_sigterm_stops_the_demo_and_every_process(tmp_path: Path) -> None:
    # No --exit-after-traffic: the demo would run until stopped. SIGTERM at the first summary.
    code, output, seen = _run_demo(
        ["--rows", "100000", "--rate", "500", "--refresh", "0.5", "--no-clear",
         "--log-dir", str(tmp_path / "logs")],
        tmp_path / "demo.out",
        until=LIVE_MARKER,
    )  # fmt: skip
    assert code == 0, output[-6000:]
    assert "SIGTERM: stopping" in output, output[-3000:]
    assert LIVE_MARKER in output
    _assert_nothing_left(output, seen)
