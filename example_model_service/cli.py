"""Run the model service: `python -m example_model_service --monitor-url URL --port N`.

Options default to the environment (`MONITOR_URL`, `MONITOR_TOKEN`, `MODEL_DIR`, `HOST`, `PORT`).
The token is read from the environment only, so it never shows in a process listing.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path

import uvicorn

from example_model_service.settings import Settings
from monitor_service.serving import GracefulServer


def main(argv: list[str] | None = None) -> int:
    # One OpenMP thread per process unless told otherwise (before scikit-learn loads its runtime):
    # the gradient boosting predicts small batches faster that way, and the drift monitor beside it
    # keeps the other cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"bad environment: {exc}") from exc
    parser = argparse.ArgumentParser(prog="python -m example_model_service", description=__doc__)
    parser.add_argument("--monitor-url", default=settings.monitor_url, help="drift monitor base URL")
    parser.add_argument("--model-dir", type=Path, default=settings.model_dir, help="trained models")
    parser.add_argument("--host", default=settings.host, help="listen address")
    parser.add_argument("--port", type=int, default=settings.port, help="listen port")
    parser.add_argument(
        "--no-train", action="store_true", help="fail instead of training when the models are missing"
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "info"),
        choices=["critical", "error", "warning", "info", "debug"],
    )
    args = parser.parse_args(argv)
    settings = dataclasses.replace(
        settings,
        monitor_url=args.monitor_url or None,
        model_dir=args.model_dir,
        host=args.host,
        port=args.port,
        train_if_missing=not args.no_train,
    )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from example_model_service.app import create_app

    server = GracefulServer(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=args.log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    )
    server.run()
    return 0 if server.started else 1
