"""Shared fixtures: small configs over the bundled diamonds data, and an app with a thread executor."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import MonitorConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
DIAMONDS = ROOT / "datasets" / "diamonds"


def diamonds_model(**overrides: Any) -> dict[str, Any]:
    """The bundled example model as a config mapping; `overrides` replace top-level keys."""
    model: dict[str, Any] = {
        "name": "diamonds",
        "task": "regression",
        "reference": str(DIAMONDS / "reference.csv"),
        "columns": {
            "id": "request_id",
            "target": "price",
            "prediction": "prediction",
            "numerical": ["carat", "depth", "table", "x", "y", "z"],
            "categorical": ["cut", "color", "clarity"],
        },
        "window": {"max_rows": 5000},
        "schedule": {"every": "1h", "min_rows": 10},
    }
    return {**model, **overrides}


def write_config(path: Path, models: list[dict[str, Any]], **server: Any) -> Path:
    path.write_text(yaml.safe_dump({"server": {"executor": "thread", **server}, "models": models}))
    return path


@pytest.fixture
def config(tmp_path: Path) -> MonitorConfig:
    return load_config(write_config(tmp_path / "monitor.yaml", [diamonds_model()]), environ={})


@pytest.fixture
def client(config: MonitorConfig) -> Iterator[TestClient]:
    with TestClient(create_app(config, start_scheduler=False)) as test_client:
        yield test_client


@functools.cache
def _split(split: str) -> pd.DataFrame:
    return pd.read_csv(DIAMONDS / f"{split}.csv")


def rows_of(split: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """Rows `start` .. `start + count` of a bundled split, as dicts (fresh ones on every call)."""
    records: list[dict[str, Any]] = _split(split).iloc[start : start + count].to_dict(orient="records")
    return records
