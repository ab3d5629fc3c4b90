"""Command line: `drift-monitor serve --config FILE` and `drift-monitor check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from monitor_service.config import config_warnings, load_config
from monitor_service.errors import ConfigError, SnapshotUnreadable
from monitor_service.serving import GracefulServer

EXIT_CONFIG = 2
EXIT_DATA = 4  # a stored checkpoint cannot be read (see --accept-data-loss)


def _check_config(path: str) -> int:
    """Validate the file and the references it names; create and change nothing."""
    from monitor_service import engine
    from monitor_service.service import load_models

    try:
        config = load_config(path)
        loaded = load_models(config)
        problems = engine.check_settings(config.models)
        if problems:
            raise ConfigError(path, problems)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    for name, model in loaded.items():
        print(
            f"{name}: {model.config.task}, reference {len(model.reference)} rows, "
            f"{len(model.schema.columns)} columns"
        )
    print(f"{path}: OK")
    return 0


def _serve(path: str, host: str | None, port: int | None, log_level: str, accept_data_loss: bool) -> int:
    from monitor_service.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(path)
        app = create_app(config, config_path=Path(path), accept_data_loss=accept_data_loss)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    server = GracefulServer(
        uvicorn.Config(
            app,
            host=host or config.server.host,
            port=config.server.port if port is None else port,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    )
    try:
        server.run()
    except SystemExit:  # uvicorn exits 3 when the lifespan start-up fails
        if app.state.start_error is None:
            raise
    error = app.state.start_error
    if error is not None:
        print(error, file=sys.stderr)
        return EXIT_DATA if isinstance(error, SnapshotUnreadable) else EXIT_CONFIG
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drift-monitor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the monitor")
    serve.add_argument("--config", required=True, help="YAML configuration file")
    serve.add_argument(
        "--host", default=None, help="listen address (default: config, env DRIFT_MONITOR_HOST)"
    )
    serve.add_argument("--port", type=int, default=None, help="listen port (default: config)")
    serve.add_argument(
        "--log-level",
        default=os.environ.get("DRIFT_MONITOR_LOG_LEVEL", "info"),
        choices=["critical", "error", "warning", "info", "debug"],
    )
    serve.add_argument(
        "--accept-data-loss",
        action="store_true",
        help="start even when a stored checkpoint cannot be read (it is moved aside; the rows it held "
        "are lost)",
    )
    check = sub.add_parser("check-config", help="validate a configuration file and its references")
    check.add_argument("file")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.file)
    return _serve(args.config, args.host, args.port, args.log_level, args.accept_data_loss)
