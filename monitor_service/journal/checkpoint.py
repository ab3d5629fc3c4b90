"""Checkpoints of a model's window: data only (Apache Arrow IPC files), versioned, checksummed.

A checkpoint is a directory `checkpoint-<next segment>` holding `window.arrow` (one field per
window column, `column:<name>`, plus `arrival`), `pending.arrow` (labels waiting for their rows:
`id`, `target`, `expires_at`) and `meta.json` (format, version, the first log segment it does not
cover, the expired-labels count, and a SHA-256 of each file). It is written into a temporary
directory and renamed into place, so a checkpoint directory is always complete. Any Arrow reader
opens it (`pyarrow.ipc.open_file`), and no library upgrade or crafted file can run code when it is
read, unlike the pickles of earlier versions, which are converted once (see `convert_legacy`).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from monitor_service.files import fsync_directory, write_new
from monitor_service.window import WindowRows

FORMAT = "drift-monitor-checkpoint"
VERSION = 2
PREFIX = "checkpoint-"
LEGACY_PICKLE = "snapshot.pkl"
LEGACY_VERSION = 1


class CheckpointUnreadable(Exception):
    """The checkpoint's files are missing, altered, of an unknown version, or not Arrow."""


@dataclass(frozen=True)
class Checkpoint:
    """A model's window and the labels still waiting for their rows, as of one moment."""

    window: WindowRows
    pending: list[tuple[str, Any, float]] = field(default_factory=list)
    expired: int = 0


def _column(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "f":
        return pa.array(values, type=pa.float64())
    return pa.array(values.tolist(), type=pa.large_string(), from_pandas=True)


def _values(array: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_floating(array.type):
        return np.asarray(array.to_numpy(), dtype=np.float64).copy()
    out = np.empty(len(array), dtype=object)
    out[:] = array.to_pylist()
    return out


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode(checkpoint: Checkpoint) -> dict[str, bytes]:
    """The checkpoint's two Arrow files by name (meta.json is added by `write`)."""
    window = checkpoint.window
    fields = {f"column:{name}": _column(values) for name, values in window.columns.items()}
    fields["arrival"] = pa.array(window.arrival, type=pa.float64())
    ids = [row_id for row_id, _, _ in checkpoint.pending]
    targets = [target for _, target, _ in checkpoint.pending]
    numeric = all(isinstance(t, float | int) and not isinstance(t, bool) for t in targets)
    pending = pa.table(
        {
            "id": pa.array(ids, type=pa.large_string()),
            "target": pa.array(targets, type=pa.float64() if numeric and targets else pa.large_string()),
            "expires_at": pa.array([e for _, _, e in checkpoint.pending], type=pa.float64()),
        }
    )
    return {"window.arrow": _ipc_bytes(pa.table(fields)), "pending.arrow": _ipc_bytes(pending)}


def decode(files: dict[str, bytes], meta: dict[str, Any]) -> Checkpoint:
    window = ipc.open_file(pa.BufferReader(files["window.arrow"])).read_all()
    columns = {
        name.removeprefix("column:"): _values(window.column(name))
        for name in window.column_names
        if name.startswith("column:")
    }
    rows = WindowRows(columns, _values(window.column("arrival")))
    pending_table = ipc.open_file(pa.BufferReader(files["pending.arrow"])).read_all()
    pending = list(
        zip(
            pending_table.column("id").to_pylist(),
            pending_table.column("target").to_pylist(),
            pending_table.column("expires_at").to_pylist(),
            strict=True,
        )
    )
    return Checkpoint(rows, pending, int(meta["expired"]))


def write(directory: Path, checkpoint: Checkpoint, next_segment: int) -> Path:
    """Write a complete checkpoint covering every segment before `next_segment`; return its path."""
    files = encode(checkpoint)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "next_segment": next_segment,
        "expired": checkpoint.expired,
        "rows": checkpoint.window.rows,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    tmp = directory / f".{PREFIX}{uuid.uuid4().hex}.tmp"
    os.mkdir(tmp, 0o700)
    try:
        for name, data in files.items():
            write_new(tmp / name, data)
        write_new(tmp / "meta.json", json.dumps(meta, indent=1).encode())
        fsync_directory(tmp)
        final = directory / f"{PREFIX}{next_segment:08d}"
        os.rename(tmp, final)
    except BaseException:
        for child in tmp.glob("*"):
            child.unlink(missing_ok=True)
        tmp.rmdir()
        raise
    fsync_directory(directory)
    return final


def read(path: Path) -> tuple[Checkpoint, int]:
    """The checkpoint in `path` and the first segment it does not cover; CheckpointUnreadable
    when anything about it is wrong."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise CheckpointUnreadable(
                f"unknown checkpoint format {meta.get('format')!r} version {meta.get('version')!r}"
            )
        files = {name: (path / name).read_bytes() for name in ("window.arrow", "pending.arrow")}
        for name, data in files.items():
            if hashlib.sha256(data).hexdigest() != meta["sha256"][name]:
                raise CheckpointUnreadable(f"{name} does not match its checksum")
        return decode(files, meta), int(meta["next_segment"])
    except CheckpointUnreadable:
        raise
    except Exception as exc:  # missing files, bad JSON, not Arrow, missing fields
        raise CheckpointUnreadable(f"{type(exc).__name__}: {exc}") from exc


def checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in `directory`, oldest first."""
    found = []
    for path in directory.glob(PREFIX + "*"):
        suffix = path.name.removeprefix(PREFIX)
        if path.is_dir() and suffix.isdigit():
            found.append((int(suffix), path))
    return [path for _, path in sorted(found)]


class _LegacyWindow:
    """What `monitor_service.window.WindowSnapshot` was when version 1 pickles were written."""

    columns: dict[str, np.ndarray]
    arrival: np.ndarray


_NUMPY_PICKLE_HELPERS = {"multiarray": ("_reconstruct", "scalar"), "numeric": ("_frombuffer",)}
# Everything a version 1 snapshot may reference, and nothing else: numpy arrays and the window.
_LEGACY_GLOBALS: dict[tuple[str, str], Any] = {
    **{
        (f"numpy.{core}.{module}", name): getattr(importlib.import_module(f"numpy._core.{module}"), name)
        for core in ("core", "_core")
        for module, names in _NUMPY_PICKLE_HELPERS.items()
        for name in names
    },
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("monitor_service.window", "WindowSnapshot"): _LegacyWindow,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _LEGACY_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"a checkpoint may not reference {module}.{name}") from None


def read_legacy(path: Path) -> tuple[Checkpoint, int]:
    """A version 1 pickle snapshot, read without running anything it names beyond numpy arrays."""
    try:
        with path.open("rb") as handle:
            payload = _RestrictedUnpickler(handle).load()
        if not isinstance(payload, dict) or payload.get("version") != LEGACY_VERSION:
            raise CheckpointUnreadable("not a version 1 snapshot")
        state = payload["state"]
        window = state["window"]
        rows = WindowRows(
            {str(k): np.asarray(v) for k, v in window.columns.items()}, np.asarray(window.arrival)
        )
        pending = [(str(i), t, float(e)) for i, t, e in state["pending"]]
        return Checkpoint(rows, pending, int(state["expired"])), int(payload["next_segment"])
    except CheckpointUnreadable:
        raise
    except Exception as exc:
        raise CheckpointUnreadable(f"{type(exc).__name__}: {exc}") from exc
