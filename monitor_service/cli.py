"""Command line: `drift-monitor serve --config FILE` and `drift-monitor check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from monitor_service.config import ServerConfig, config_warnings, load_config
from monitor_service.drift_warnings import drift_warnings
from monitor_service.errors import ConfigError, SnapshotUnreadable
from monitor_service.guard import Limits, effective_max_connections, protocol_class
from monitor_service.serving import GracefulServer, describe, listening_socket

if TYPE_CHECKING:
    from monitor_service.reference import ReferenceCheck
    from monitor_service.schema import RowSchema

log = logging.getLogger(__name__)
EXIT_CONFIG = 2
EXIT_STARTUP = 3  # as uvicorn: the address cannot be bound, or the app's start-up failed
EXIT_DATA = 4  # a stored checkpoint cannot be read (see --accept-data-loss)


def _check_config(path: str) -> int:
    """Check the file, each reference (with its contracts) and the stat tests; create and change nothing."""
    from monitor_service import engine
    from monitor_service.model_quality.checks import check_model_quality
    from monitor_service.reference import check_file
    from monitor_service.schema import RowSchema

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    problems: list[str] = []
    warnings: list[str] = []
    for index, model in enumerate(config.models):
        where = f"models[{index}].reference"
        schema = RowSchema.from_model(model, config.server.max_string_length)
        try:
            check = check_file(model, schema, where)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(f"{where}: {message}" for _, message in check.problems)
        if check.problems:
            continue
        print(_summary(model.name, model.task, schema, check))
        for note in check.notes:
            print(f"  {where}: {note}")
        quality = check_model_quality(config, index, check.frame)
        problems.extend(quality.errors)
        warnings.extend(f"{model.name}: {warning}" for warning in quality.warnings)
        warnings.extend(drift_warnings(model, check.frame, f"models[{index}]"))
        if quality.summary:
            print(f"  {quality.summary}")
    problems.extend(engine.check_settings(config.models))
    if problems:
        print(ConfigError(path, problems), file=sys.stderr)
        return EXIT_CONFIG
    for warning in [*config_warnings(config), *warnings]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    return 0


def _summary(name: str, task: str, schema: RowSchema, check: ReferenceCheck) -> str:
    """`m: regression, reference 50 rows; 11 columns configured (10 compared), 13 in the file, ...`."""
    configured = schema.names
    unused = [c for c in check.file_columns if c not in configured]
    extra = ", not used: " + ", ".join(repr(c) for c in unused) if unused else ""
    return (
        f"{name}: {task}, reference {len(check.frame)} rows; {len(configured)} columns configured "
        f"({len(check.frame.columns)} compared), {len(check.file_columns)} in the file{extra}"
    )


def uvicorn_config(app: object, server: ServerConfig, log_level: str) -> uvicorn.Config:
    """uvicorn on httptools behind the guard (monitor_service/guard.py) with the configured limits."""
    limits = Limits(
        max_header_bytes=server.max_header_bytes,
        max_headers=server.max_headers,
        header_timeout=server.header_timeout,
        body_timeout=server.body_timeout,
        max_connections=effective_max_connections(server.max_connections),
    )
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        http=protocol_class(limits),
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=server.keep_alive_timeout,  # type: ignore[arg-type]  # a float works
    )


def _serve(path: str, host: str | None, port: int | None, log_level: str, accept_data_loss: bool) -> int:
    from monitor_service.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    host = host or config.server.host
    port = config.server.port if port is None else port
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        log.error("cannot listen on %s port %d: %s", host, port, exc.strerror or exc)
        return EXIT_STARTUP
    try:
        app = create_app(config, config_path=Path(path), accept_data_loss=accept_data_loss)
    except ConfigError as exc:
        sock.close()
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    ready = f"drift monitor ready on {describe(sock)}: models {', '.join(m.name for m in config.models)}"
    server = GracefulServer(
        uvicorn_config(app, config.server, log_level), ready_message=ready, freeze_gc=True
    )
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits 3 when the lifespan start-up fails
        if app.state.start_error is None:
            raise
    finally:
        sock.close()
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
