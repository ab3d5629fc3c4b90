"""Memory sizing of the drift monitor (server + calculation worker) from its configuration file.

    python deploy/kubernetes/sizing.py config/stack.yaml

prints, per process, the steady and peak resident memory the formula of docs/kubernetes.md
predicts, and the container's memory request (steady total) and limit (peaks total plus 20 %).
The coefficients were fitted with `python bench/memory.py sizing`, which measures real servers and
prints the formula's error next to each measurement (within 20 % on every configuration measured).
Figures are MB (10^6 bytes); Kubernetes quantities are printed in Mi.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

# Fitted constants (see docs/kubernetes.md#sizing for what each term is). Sizes are MB (10^6 bytes);
# the per-data factors multiply the raw size of what is stored: 8 bytes per cell (a float64, or a
# pointer to a category string shared by every cell with that value).
SERVER_BASE = 176.0  # the server: Python, FastAPI, pandas, pyarrow, no model
WORKER_BASE = 298.0  # the worker: Evidently, scipy and scikit-learn imported
TRACKER = 13.0  # multiprocessing's resource tracker process
SERVER_NUMERIC = 0.85  # per MB of numeric window cells (each row also has an arrival time)
SERVER_CATEGORICAL = 1.7  # per MB of categorical window cells (with what parsing them leaves behind)
SERVER_ID_BYTES = 330.0  # per window row with an id: its string and its id index entry
SERVER_REFERENCE = 1.5  # per MB of reference, the server's copy
WORKER_REFERENCE = 2.0  # per MB of reference, the worker's cached copy
SERVER_PEAK = 2.8  # per MB of the largest window + reference: the ordered copy and its pickle
WORKER_STEADY = 0.25  # per MB of the largest window: what the worker keeps of calculations (varies)
WORKER_PEAK = 2.6  # per MB of the largest window: its frame and the stat tests' intermediates
LIMIT_MARGIN = 1.2


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on: stored columns by kind, window rows, reference rows, an id column."""

    numeric_columns: int
    categorical_columns: int
    window_rows: int
    reference_rows: int
    id_column: bool = False

    @property
    def window_numeric_mb(self) -> float:
        return self.window_rows * (self.numeric_columns + 1) * 8 / 1e6  # + the arrival time

    @property
    def window_categorical_mb(self) -> float:
        return self.window_rows * self.categorical_columns * 8 / 1e6

    @property
    def window_mb(self) -> float:
        """Raw size of the window: every cell, the id column's pointers included."""
        ids = self.window_rows * 8 / 1e6 if self.id_column else 0.0
        return self.window_numeric_mb + self.window_categorical_mb + ids

    @property
    def reference_mb(self) -> float:
        return self.reference_rows * (self.numeric_columns + self.categorical_columns) * 8 / 1e6


@dataclass(frozen=True)
class Estimate:
    server: float
    server_peak: float
    worker: float
    worker_peak: float

    @property
    def request_mb(self) -> float:
        return self.server + self.worker + TRACKER

    @property
    def limit_mb(self) -> float:
        return (self.server_peak + self.worker_peak + TRACKER) * LIMIT_MARGIN


def estimate(models: list[ModelShape]) -> Estimate:
    """The formula: fixed bases, per-model window and reference terms, the largest model's peaks
    (one calculation runs at a time)."""
    server = SERVER_BASE + sum(
        SERVER_NUMERIC * m.window_numeric_mb
        + SERVER_CATEGORICAL * m.window_categorical_mb
        + (SERVER_ID_BYTES * m.window_rows / 1e6 if m.id_column else 0.0)
        + SERVER_REFERENCE * m.reference_mb
        for m in models
    )
    worker = WORKER_BASE + sum(WORKER_REFERENCE * m.reference_mb for m in models)
    window = max((m.window_mb for m in models), default=0.0)
    sent = max((m.window_mb + m.reference_mb for m in models), default=0.0)
    return Estimate(
        server, server + SERVER_PEAK * sent, worker + WORKER_STEADY * window, worker + WORKER_PEAK * window
    )


def shapes_from_config(path: Path, reference_rows: dict[str, int] | None = None) -> list[ModelShape]:
    """Model shapes of a monitor config; reference rows are counted from the files (CSV lines,
    Parquet metadata) unless given by model name."""
    config = yaml.safe_load(path.read_text())
    shapes = []
    for model in config["models"]:
        columns = model["columns"]
        numeric = len(columns.get("numerical", [])) + int(bool(columns.get("timestamp")))
        categorical = len(columns.get("categorical", []))
        # Target and a single prediction are numbers for regression, labels for classification;
        # a list of predictions holds per-class probabilities, as does `probability`.
        outputs = int(bool(columns.get("target")))
        prediction = columns.get("prediction")
        if isinstance(prediction, list):
            numeric += len(prediction)
        else:
            outputs += int(prediction is not None)
        numeric += int(bool(columns.get("probability")))
        if model["task"] == "regression":
            numeric += outputs
        else:
            categorical += outputs
        rows = (reference_rows or {}).get(model["name"])
        if rows is None:
            rows = _count_rows((path.parent / model["reference"]).resolve())
        window = int(model.get("window", {}).get("max_rows", 10_000))
        shapes.append(ModelShape(numeric, categorical, window, rows, bool(columns.get("id"))))
    return shapes


def _count_rows(path: Path) -> int:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as f:
        return max(0, sum(1 for _ in f) - 1)


def mebibytes(mb: float) -> str:
    """MB (10^6 bytes) as a Kubernetes quantity in Mi, rounded up to 16 Mi."""
    return f"{math.ceil(mb * 1e6 / 2**20 / 16) * 16}Mi"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument(
        "--reference-rows",
        action="append",
        default=[],
        metavar="MODEL=ROWS",
        help="reference rows of a model whose file is not here (e.g. a path inside the image)",
    )
    args = parser.parse_args(argv)
    given = {k: int(v) for k, _, v in (item.partition("=") for item in args.reference_rows)}
    result = estimate(shapes_from_config(args.config, given))
    print(f"server  steady {result.server:6.0f} MB   peak {result.server_peak:6.0f} MB")
    print(f"worker  steady {result.worker:6.0f} MB   peak {result.worker_peak:6.0f} MB")
    request, limit = mebibytes(result.request_mb), mebibytes(result.limit_mb)
    print(f"resources: requests.memory {request}, limits.memory {limit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
