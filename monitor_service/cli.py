"""Command line: `drift-monitor serve --config FILE` and `drift-monitor check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from monitor_service.config import load_config
from monitor_service.errors import ConfigError
from monitor_service.serving import GracefulServer

if TYPE_CHECKING:
    from monitor_service.reference import ReferenceCheck
    from monitor_service.schema import RowSchema

EXIT_CONFIG = 2


def _check_config(path: str) -> int:
    """Check the file, each reference (with its contracts) and the stat tests; change nothing."""
    from monitor_service import engine
    from monitor_service.reference import check_file
    from monitor_service.schema import RowSchema

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    problems: list[str] = []
    for index, model in enumerate(config.models):
        where = f"models[{index}].reference"
        schema = RowSchema.from_model(model, config.server.max_string_length)
        try:
            check: ReferenceCheck = check_file(model, schema, where)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(f"{where}: {message}" for _, message in check.problems)
        if not check.problems:
            print(_summary(model.name, model.task, schema, check))
        for note in check.notes:
            print(f"  {where}: {note}")
    problems.extend(engine.warm_up(config.models))
    if problems:
        print(ConfigError(path, problems), file=sys.stderr)
        return EXIT_CONFIG
    print(f"{path}: OK")
    return 0


def _summary(name: str, task: str, schema: RowSchema, check: ReferenceCheck) -> str:
    """`m: regression, reference 50 rows; 11 columns configured (10 compared), 13 in the file, ...`."""
    configured = schema.names
    compared = len(check.frame.columns)
    unused = [c for c in check.file_columns if c not in configured]
    extra = ", not used: " + ", ".join(repr(c) for c in unused) if unused else ""
    return (
        f"{name}: {task}, reference {len(check.frame)} rows; {len(configured)} columns configured "
        f"({compared} compared), {len(check.file_columns)} in the file{extra}"
    )


def _serve(path: str, host: str | None, port: int | None, log_level: str) -> int:
    from monitor_service.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(path)
        app = create_app(config, config_path=Path(path))
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
        if app.state.config_error is None:
            raise
    if app.state.config_error is not None:
        return EXIT_CONFIG
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
    check = sub.add_parser("check-config", help="validate a configuration file and its references")
    check.add_argument("file")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.file)
    return _serve(args.config, args.host, args.port, args.log_level)
