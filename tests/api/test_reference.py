from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from monitor_service.app import create_app
from monitor_service.config import load_config
from tests.conftest import DIAMONDS, diamonds_model, rows_of, write_config

URL = "/v1/models/diamonds/reference"


def _drifted_csv() -> bytes:
    return pd.read_csv(DIAMONDS / "drifted.csv").head(2000).to_csv(index=False).encode()


def test_put_reference_swaps_it_for_the_next_calculation(client: TestClient) -> None:
    client.post("/v1/models/diamonds/rows", json={"rows": rows_of("drifted", 1500)})
    assert client.post("/v1/models/diamonds/calculate").json()["dataset_drift"] is True
    response = client.put(URL, content=_drifted_csv(), headers={"content-type": "text/csv"})
    assert response.status_code == 200
    assert response.json()["rows"] == 2000
    assert response.json()["persisted"] is False
    result = client.post("/v1/models/diamonds/calculate").json()
    assert result["reference_rows"] == 2000
    assert result["dataset_drift"] is False


def test_put_reference_accepts_parquet_and_json(client: TestClient) -> None:
    frame = pd.read_csv(DIAMONDS / "reference.csv").head(300)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    parquet = client.put(
        URL, content=buffer.getvalue(), headers={"content-type": "application/vnd.apache.parquet"}
    )
    assert parquet.json()["rows"] == 300
    as_json = client.put(URL, json={"rows": frame.head(50).to_dict(orient="records")})
    assert as_json.json()["rows"] == 50


def test_put_reference_rejects_missing_and_mistyped_columns_and_keeps_the_old_one(client: TestClient) -> None:
    frame = pd.read_csv(DIAMONDS / "reference.csv").head(100).drop(columns=["depth"])
    frame["carat"] = "heavy"
    response = client.put(
        URL, content=frame.to_csv(index=False).encode(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert ["body", "depth"] in locs
    assert ["body", "carat"] in locs
    assert client.get("/v1/models").json()["models"][0]["reference_rows"] == 10_000


def test_put_reference_rejects_unreadable_bodies(client: TestClient) -> None:
    assert (
        client.put(
            URL, content=b"\x00garbage", headers={"content-type": "application/vnd.apache.parquet"}
        ).status_code
        == 400
    )
    assert client.put(URL, content=b"a,b", headers={"content-type": "application/xml"}).status_code == 415
    assert client.put(URL, content=b"carat\n", headers={"content-type": "text/csv"}).status_code == 422


def test_put_reference_is_persisted_and_wins_after_restart(tmp_path: Path) -> None:
    path = write_config(tmp_path / "monitor.yaml", [diamonds_model()])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    config = load_config(path, environ={})
    with TestClient(create_app(config, start_scheduler=False)) as client:
        response = client.put(URL, content=_drifted_csv(), headers={"content-type": "text/csv"})
        assert response.json()["persisted"] is True
    with TestClient(create_app(config, start_scheduler=False)) as client:
        assert client.get("/v1/models").json()["models"][0]["reference_rows"] == 2000


def test_moving_reference_becomes_the_previous_window(tmp_path: Path) -> None:
    legacy = diamonds_model(moving_reference=True, drift={"mode": "legacy"})
    config = load_config(write_config(tmp_path / "m.yaml", [legacy]), environ={})
    with TestClient(create_app(config, start_scheduler=False)) as client:
        client.post("/v1/models/diamonds/rows", json={"rows": rows_of("drifted", 1200)})
        first = client.post("/v1/models/diamonds/calculate").json()
        assert (first["reference_rows"], first["dataset_drift"]) == (10_000, True)
        second = client.post("/v1/models/diamonds/calculate").json()
        assert (second["reference_rows"], second["dataset_drift"]) == (1200, False)


def test_moving_reference_is_ignored_in_tested_mode(tmp_path: Path) -> None:
    """Comparing each window with the previous one hides a step change: tested mode keeps the
    reference fixed (and warns at start, see tests/test_drift_warnings.py)."""
    config = load_config(
        write_config(tmp_path / "m.yaml", [diamonds_model(moving_reference=True)]), environ={}
    )
    with TestClient(create_app(config, start_scheduler=False)) as client:
        client.post("/v1/models/diamonds/rows", json={"rows": rows_of("drifted", 1200)})
        first = client.post("/v1/models/diamonds/calculate").json()
        second = client.post("/v1/models/diamonds/calculate").json()
        assert (first["reference_rows"], first["dataset_drift"]) == (10_000, True)
        assert (second["reference_rows"], second["dataset_drift"]) == (10_000, True)


def test_saved_reference_that_no_longer_fits_falls_back_to_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "monitor.yaml", [diamonds_model()])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        client.put(URL, content=_drifted_csv(), headers={"content-type": "text/csv"})
    model = diamonds_model()
    model["columns"]["numerical"] = [*model["columns"]["numerical"], "price_per_carat"]
    frame = pd.read_csv(DIAMONDS / "reference.csv")
    frame["price_per_carat"] = frame["price"] / frame["carat"]
    frame.to_csv(tmp_path / "reference.csv", index=False)
    model["reference"] = str(tmp_path / "reference.csv")
    model["columns"]["target"] = "price"
    path = write_config(tmp_path / "monitor.yaml", [model])
    path.write_text(path.read_text() + f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    with TestClient(create_app(load_config(path, environ={}), start_scheduler=False)) as client:
        assert client.get("/v1/models").json()["models"][0]["reference_rows"] == 10_000
