"""Command line: `drift-monitor serve --config FILE` and `drift-monitor check-config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from monitor_service.config import ServerConfig, load_config
from monitor_service.errors import ConfigError
from monitor_service.guard import Limits, effective_max_connections, protocol_class
from monitor_service.serving import GracefulServer, describe, listening_socket

log = logging.getLogger(__name__)
EXIT_CONFIG = 2
EXIT_STARTUP = 3  # as uvicorn: the address cannot be bound, or the app's start-up failed


def _check_config(path: str) -> int:
    from monitor_service import engine
    from monitor_service.runtime import build_runtimes

    try:
        config = load_config(path)
        runtimes = build_runtimes(config)
        problems = engine.warm_up(config.models)
        if problems:
            raise ConfigError(path, problems)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    for runtime in runtimes.values():
        print(
            f"{runtime.name}: {runtime.config.task}, reference {len(runtime.reference)} rows, "
            f"{len(runtime.schema.columns)} columns"
        )
    print(f"{path}: OK")
    return 0


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


def _serve(path: str, host: str | None, port: int | None, log_level: str) -> int:
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
        app = create_app(config, config_path=Path(path))
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
        if app.state.config_error is None:
            raise
    finally:
        sock.close()
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
