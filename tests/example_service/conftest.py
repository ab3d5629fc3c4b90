"""Fixtures for the example model service: models trained once per session, a fake monitor sink."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from example_model_service.app import create_app
from example_model_service.models import Predictors, load
from example_model_service.settings import Settings
from example_model_service.train import train_models


@dataclass(frozen=True)
class FakeStats:
    enqueued: int
    sent: int
    rejected: int = 0
    dropped_queue_full: int = 0
    dropped_after_retries: int = 0
    dropped_closed: int = 0
    retried: int = 0
    batches_sent: int = 0
    pending: int = 0


class RecordingSink:
    """Stands in for MonitorClient: keeps what the service sends, per monitor model."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.closed = False

    def send_rows(self, model: str, rows: list[dict[str, Any]]) -> None:
        self.rows[model].extend(rows)

    def stats(self) -> FakeStats:
        count = sum(len(rows) for rows in self.rows.values())
        return FakeStats(enqueued=count, sent=count, batches_sent=len(self.rows))

    def close(self, timeout: float = 5.0) -> bool:
        del timeout
        self.closed = True
        return True


@pytest.fixture(autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    """Predict on one OpenMP thread, as the service does (its CLI sets OMP_NUM_THREADS=1): with
    two, a busy machine makes every prediction 10-20 times slower."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    train_models(directory)
    return directory


@pytest.fixture(scope="session")
def predictors(model_dir: Path) -> Predictors:
    return load(model_dir)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def client(model_dir: Path, predictors: Predictors, sink: RecordingSink) -> Iterator[TestClient]:
    settings = Settings(model_dir=model_dir, max_rows_per_request=50)
    with TestClient(create_app(settings, predictors=predictors, monitor=sink)) as test_client:
        yield test_client
