"""Monitors in cluster mode for tests: configs that join the test cluster, and the traffic both a
single node and a cluster are sent (the same batches, in the same order)."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import yaml

from tests.conftest import diamonds_model, rows_of
from tests.support.nats import CLIENT_USER, NatsCluster

MODEL = "diamonds"


def cluster_section(cluster: NatsCluster, prefix: str | None = None, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "servers": cluster.urls,
        "user": CLIENT_USER,
        "stream_prefix": prefix or f"T{uuid.uuid4().hex[:10]}",
        "replicas": 3,
        "publish_timeout": 4.0,
        "duplicate_window": 60.0,
        "task_ack_wait": 2.0,
        "connect_timeout": 2.0,
    }
    return {**settings, **overrides}


def model_section(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "window": {"max_rows": 400},
        "labels": {"pending_ttl": 3600},
        "schedule": {"every": "1h", "min_rows": 10},
    }
    return diamonds_model(**{**settings, **overrides})


def write_monitor_config(
    path: Path,
    models: list[dict[str, Any]],
    cluster: dict[str, Any] | None = None,
    **server: Any,
) -> Path:
    """A monitor's YAML file; the cluster password goes in by environment, never into the file."""
    raw: dict[str, Any] = {"server": {"executor": "thread", **server}, "models": models}
    if cluster is not None:
        raw["cluster"] = cluster
    path.write_text(yaml.safe_dump(raw))
    return path


@dataclass(frozen=True)
class Batch:
    """One request of the traffic: its body as sent (any format the API takes) and its batch id."""

    kind: str
    body: bytes
    key: str
    content_type: str = "application/json"
    gzipped: bool = False

    @property
    def path(self) -> str:
        return f"/v1/models/{MODEL}/{self.kind}"

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type, "Idempotency-Key": self.key}
        if self.gzipped:
            headers["Content-Encoding"] = "gzip"
        return headers


NDJSON = "application/x-ndjson"
ARROW = "application/vnd.apache.arrow.stream"


def _rows_body(number: int, rows: list[dict[str, Any]]) -> Batch:
    """Rows in every body format the API takes, in turn: JSON rows, JSON columns, NDJSON, Arrow,
    some of them gzipped."""
    key = f"rows-{number}"
    kind = number % 4
    if kind == 1:
        columns = {name: [row.get(name) for row in rows] for name in rows[0]}
        return Batch("rows", json.dumps({"columns": columns}).encode(), key)
    if kind == 2:
        body = "\n".join(json.dumps(row) for row in rows).encode()
        return Batch("rows", gzip.compress(body), key, NDJSON, gzipped=True)
    if kind == 3:
        typed = [{**row, "color": None if row["color"] is None else str(row["color"])} for row in rows]
        sink = io.BytesIO()
        table = pa.Table.from_pylist(typed)
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Batch("rows", sink.getvalue(), key, ARROW)
    return Batch("rows", json.dumps({"rows": rows}).encode(), key, gzipped=False)


def traffic(batches: int = 14, seed: int = 3) -> list[Batch]:
    """Rows in batches of uneven sizes (the window of 400 turns over) and in every body format,
    some nulls and integer categories, and labels: for rows already sent, for rows sent later (they
    wait), as JSON and as gzipped NDJSON."""
    out: list[Batch] = []
    start = 0
    sizes = [1, 150, 7, 90, 33, 120, 2, 60, 75, 140, 11, 95, 48, 130][:batches]
    for number, size in enumerate(sizes):
        rows = rows_of("production" if number < 7 else "drifted", size, start=(start + seed) % 4000)
        for offset, row in enumerate(rows):
            row["request_id"] = f"q-{start + offset}"
            row.pop("price")
            if (start + offset) % 17 == 0:
                row["carat"] = None
            if (start + offset) % 23 == 0:
                row["color"] = 7  # an integer category: validated into "7"
        out.append(_rows_body(number, rows))
        if number % 3 == 1:  # labels for rows just sent, and for rows of the next batch
            ids = [f"q-{i}" for i in range(start, start + size, 2)] + [f"q-{start + size + 1}"]
            labels = [{"id": row_id, "target": 300.0 + i} for i, row_id in enumerate(ids)]
            if number % 2 == 0:
                body = gzip.compress("\n".join(json.dumps(label) for label in labels).encode())
                out.append(Batch("labels", body, f"labels-{number}", NDJSON, gzipped=True))
            else:
                out.append(Batch("labels", json.dumps({"labels": labels}).encode(), f"labels-{number}"))
        start += size
    return out


# What differs between two runs of the same traffic: when and how long a calculation ran, and the
# arrival times of the window's rows (each run stamps the rows with its own clock as it accepts them;
# members of one cluster share the accepting member's stamps: `same_arrivals`).
RUN_FIELDS = ("finished_at", "duration_seconds", "window_first_arrival", "window_last_arrival")


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A calculation result without what differs between runs (RUN_FIELDS)."""
    return {k: v for k, v in result.items() if k not in RUN_FIELDS}


def same_arrivals(*results: dict[str, Any]) -> tuple[float, float]:
    """The window's arrival bounds, which every result of one cluster's window must share."""
    bounds = {(r["window_first_arrival"], r["window_last_arrival"]) for r in results}
    assert len(bounds) == 1, bounds
    [(first, last)] = bounds
    assert first is not None and last is not None and first <= last, bounds
    return first, last
