"""Memory of the real server and its calculation worker, by configuration (for `memory.py sizing`).

For one configuration (models, numerical and categorical columns, window rows, reference rows, an id
column or not) it writes a Parquet reference per model and a config (process executor, schedule off,
no storage), starts `python -m monitor_service serve` on a free loopback port, and reads /proc of the
server and its worker (and multiprocessing's resource tracker) at each stage:

  idle       ready: references loaded, worker started and warmed up (Evidently imported)
  filled     every window full, through HTTP ingest in 10,000-row JSON bodies
  calc 1     after one POST /calculate per model
  calc 3     after two more rounds (steady state)

and the peaks (VmHWM) at the end. RSS counts the pages of shared libraries in both processes; PSS
(/proc/PID/smaps_rollup) splits shared pages between them, so the PSS sum is close to what a
container's memory cgroup charges for the two (page cache of other files aside).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import yaml

BATCH = 10_000
VOCABULARY = 12  # distinct values per categorical column
STAGES = ("idle", "filled", "calc 1", "calc 3")


@dataclass(frozen=True)
class Case:
    """One deployment shape to measure."""

    name: str
    models: int = 1
    numerical: int = 15
    categorical: int = 5
    window: int = 100_000
    reference: int = 10_000
    id_column: bool = False

    def label(self) -> str:
        ids = " +id" if self.id_column else ""
        return (
            f"{self.models}m {self.numerical}n+{self.categorical}c{ids} "
            f"win {self.window // 1000}k ref {self.reference // 1000}k"
        )


@dataclass(frozen=True)
class Memory:
    """One process's memory in MB (10^6 bytes)."""

    rss: float
    anon: float
    hwm: float
    pss: float


def read(pid: int) -> Memory:
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value
    pss = 0.0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024 / 1e6

    def mb(key: str) -> float:
        return int(fields[key].split()[0]) * 1024 / 1e6

    return Memory(mb("VmRSS"), mb("RssAnon"), mb("VmHWM"), pss)


def _children(pid: int) -> dict[str, int]:
    """The server's children by role: `worker` and `tracker` (multiprocessing's resource tracker)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found["tracker" if b"resource_tracker" in cmdline else "worker"] = int(entry)
    return found


def _frame(case: Case, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"num_{i:02d}": rng.normal(i, 1 + i / 10, rows) for i in range(case.numerical)}
    for i in range(case.categorical):
        values = np.array([f"c{i}_{v}" for v in range(VOCABULARY)], dtype=object)
        data[f"cat_{i:02d}"] = values[rng.integers(0, VOCABULARY, rows)]
    data["prediction"] = rng.normal(0, 1, rows)
    return pd.DataFrame(data)


def _bodies(case: Case, batch: int) -> list[bytes]:
    """Four distinct JSON bodies of `batch` rows, reused (ids, when configured, made unique per post)."""
    out = []
    for seed in range(4):
        df = _frame(case, batch, seed + 100)
        out.append(orjson.dumps({"rows": df.to_dict(orient="records")}))
    return out


def _with_ids(body: bytes, start: int) -> bytes:
    rows = orjson.loads(body)["rows"]
    for offset, row in enumerate(rows):
        row["request_id"] = f"req-{start + offset:012d}"
    return orjson.dumps({"rows": rows})


def _config(case: Case, tmp: Path) -> Path:
    reference = tmp / "reference.parquet"
    _frame(case, case.reference, 1).to_parquet(reference)
    columns: dict[str, Any] = {
        "prediction": "prediction",
        "numerical": [f"num_{i:02d}" for i in range(case.numerical)],
        "categorical": [f"cat_{i:02d}" for i in range(case.categorical)],
    }
    if case.id_column:
        columns["id"] = "request_id"
    models = [
        {
            "name": f"model_{k}",
            "task": "regression",
            "reference": str(reference),
            "columns": columns,
            "window": {"max_rows": case.window},
            "schedule": {"every": "24h", "min_rows": 1},
            "metrics": ["data_drift", "prediction_drift", "data_quality"],
        }
        for k in range(case.models)
    ]
    server = {"executor": "process", "max_rows_per_request": BATCH, "max_body_bytes": 64 * 1024 * 1024}
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump({"server": server, "models": models}))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if _request(port, "GET", "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def measure(case: Case, tmp: Path, env: dict[str, str], batch: int = BATCH) -> dict[str, Any]:
    """Start a server for `case`, walk the stages, return {stage: {process: Memory}} and the peaks."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = _config(case, tmp)
    port = _free_port()
    log = tmp / "server.log"
    command = [sys.executable, "-m", "monitor_service", "serve", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        _wait_ready(process, port, log)
        pids = {"server": process.pid, **_children(process.pid)}
        stages: dict[str, dict[str, dict[str, float]]] = {}

        def snap(stage: str) -> None:
            stages[stage] = {role: asdict(read(pid)) for role, pid in pids.items()}

        snap("idle")
        bodies = _bodies(case, batch)
        started = time.perf_counter()
        for k in range(case.models):
            for i in range(0, case.window, batch):
                body = bodies[(i // batch) % len(bodies)]
                if case.id_column:
                    body = _with_ids(body, k * case.window + i)
                status, answer = _request(port, "POST", f"/v1/models/model_{k}/rows", body)
                assert status == 202, answer[:500]
        fill_seconds = time.perf_counter() - started
        snap("filled")
        for round_ in range(3):
            for k in range(case.models):
                status, answer = _request(port, "POST", f"/v1/models/model_{k}/calculate")
                assert status == 200, answer[:500]
            if round_ == 0:
                snap("calc 1")
        snap("calc 3")
        assert _children(process.pid).get("worker") == pids.get("worker"), "the worker was replaced"
        return {"stages": stages, "rows_per_second": case.models * case.window / fill_seconds}
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


CASES = (
    Case("small window", window=10_000),
    Case("default window", window=100_000),
    Case("big reference", window=100_000, reference=100_000),
    Case("1M window", window=1_000_000),
    Case("few columns", numerical=5, categorical=0, window=100_000),
    Case("many columns", numerical=60, categorical=20, window=100_000),
    Case("categorical", numerical=5, categorical=30, window=100_000),
    Case("four models", models=4, window=100_000),
    Case("id column", window=100_000, id_column=True),
)
