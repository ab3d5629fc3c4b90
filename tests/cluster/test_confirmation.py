"""The confirmed drift state in cluster mode: it lives in the model's shared entry, so it advances
once per calculation whichever member ran it, and every member serves the same state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import MonitorConfig, load_config
from monitor_service.confirmation import ConfirmationState
from tests.cluster.monitors import MODEL, cluster_section, model_section, write_monitor_config
from tests.conftest import rows_of
from tests.support.nats import NatsCluster

pytestmark = pytest.mark.integration

WINDOW = 400
# Two drifted calculations confirm, but only across a full turnover of the window's rows (the
# default): the second calculation must see none of the first one's rows.
DRIFT = {"confirm": 2, "clear": 2}


def load(path: Path, cluster: NatsCluster | None) -> MonitorConfig:
    environ = {"DRIFT_MONITOR_NATS_PASSWORD": cluster.password} if cluster else {}
    return load_config(path, environ=environ)


@pytest.fixture
def monitors(cluster: NatsCluster, tmp_path: Path) -> Iterator[tuple[TestClient, list[TestClient]]]:
    """A single node and two members of one cluster, the same model on each, no scheduler."""
    model = model_section(window={"max_rows": WINDOW}, drift=DRIFT)
    section = cluster_section(cluster)
    with ExitStack() as stack:
        single_config = load(write_monitor_config(tmp_path / "single.yaml", [model]), None)
        single = stack.enter_context(TestClient(create_app(single_config, start_scheduler=False)))
        members = []
        for number in range(2):
            path = write_monitor_config(
                tmp_path / f"m{number}.yaml", [model], {**section, "name": f"m{number}"}
            )
            members.append(
                stack.enter_context(TestClient(create_app(load(path, cluster), start_scheduler=False)))
            )
        yield single, members


def send_window(clients: list[TestClient], split: str, start: int) -> None:
    """A whole window of fresh rows (none of the previous window's) to each client."""
    rows = rows_of(split, WINDOW, start=start)
    for offset, row in enumerate(rows):
        row["request_id"] = f"{split}-{start + offset}"
        row.pop("price")
    key = uuid.uuid4().hex
    for client in clients:
        response = client.post(
            f"/v1/models/{MODEL}/rows", json={"rows": rows}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 202, response.text


def calculate(client: TestClient) -> dict[str, Any]:
    response = client.post(f"/v1/models/{MODEL}/calculate")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def confirmation(client: TestClient) -> ConfirmationState:
    state: ConfirmationState = client.app.state.service.stats_of(MODEL).confirmation  # type: ignore[attr-defined]
    return state


def flags(state: ConfirmationState) -> tuple[Any, ...]:
    """What a run decides, without the arrival times (each run stamps its rows with its own clock)."""
    columns = {name: (track.confirmed, track.streak) for name, track in state.columns.items()}
    return state.calculations, state.dataset.confirmed, state.dataset.streak, columns


def shared_after(members: list[TestClient], calculations: int) -> ConfirmationState:
    """The state every member serves once its mirror shows `calculations`: one state, the same on
    each member, through the API as through the collector's view."""
    deadline = time.monotonic() + 10
    while True:
        states = [confirmation(member) for member in members]
        if all(state.calculations >= calculations for state in states) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [state.calculations for state in states] == [calculations] * len(members)
    assert states[0].as_dict() == states[1].as_dict()
    served = [member.get(f"/v1/models/{MODEL}/results").json() for member in members]
    summary = states[0].summary()
    for answer in served:
        assert answer["dataset_drift_confirmed"] == summary["dataset_drift_confirmed"]
        assert answer["columns_drift_confirmed"] == summary["columns_drift_confirmed"]
    return states[0]


def test_members_taking_turns_continue_one_confirmation(
    monitors: tuple[TestClient, list[TestClient]],
) -> None:
    """confirm: 2 with turnover. Drifted window A calculated on m0: raw drift, not confirmed. The same
    window again on m1: the streak goes on but the rows have not turned over. Drifted window B on
    m0: confirmed. Each step the two members serve one state, advanced once per calculation, and
    it is the single node's after the same calculations. A member that started over from its own
    state would need two more calculations, and one that advanced it twice would confirm early."""
    single, members = monitors
    everyone = [single, *members]

    send_window(everyone, "drifted", 0)
    first = calculate(members[0])
    calculate(single)
    assert first["dataset_drift"] is True  # the raw verdict: drift, from the first calculation on
    after_first = shared_after(members, 1)
    assert (after_first.dataset.confirmed, after_first.dataset.streak) == (False, 1)
    assert flags(after_first) == flags(confirmation(single))

    calculate(members[1])  # the same rows: another drifted calculation, no turnover
    calculate(single)
    after_second = shared_after(members, 2)
    assert (after_second.dataset.confirmed, after_second.dataset.streak) == (False, 2)
    assert after_second.dataset.since == after_first.dataset.since  # the streak began on m0
    assert flags(after_second) == flags(confirmation(single))

    send_window(everyone, "drifted", WINDOW)  # a window of rows the streak's first one never held
    third = calculate(members[0])
    calculate(single)
    assert third["dataset_drift"] is True
    after_third = shared_after(members, 3)
    assert after_third.dataset.confirmed and after_third.summary()["dataset_drift_confirmed"] is True
    assert after_third.summary()["columns_drift_confirmed"]  # columns confirm the same way
    assert flags(after_third) == flags(confirmation(single))
    metrics = members[1].get("/metrics").text
    assert f'drift_monitor_dataset_drift_confirmed{{model="{MODEL}"}} 1.0' in metrics
