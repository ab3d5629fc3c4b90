"""Settings of the example model service, from the environment (the command line overrides them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class Settings:
    """Where the monitor and the models are, and where to listen.

    Environment: `MONITOR_URL` (unset: predictions are not reported), `MONITOR_TOKEN` (the
    monitor's ingest token), `MODEL_DIR`, `HOST`, `PORT`.
    """

    monitor_url: str | None = None
    monitor_token: str | None = field(default=None, repr=False)
    model_dir: Path = DEFAULT_MODEL_DIR
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    train_if_missing: bool = True
    max_rows_per_request: int = 1_000
    max_body_bytes: int = 4 * 1024 * 1024
    monitor_batch_size: int = 500
    monitor_flush_interval: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        port = env.get("PORT", "")
        return cls(
            monitor_url=env.get("MONITOR_URL") or None,
            monitor_token=env.get("MONITOR_TOKEN") or None,
            model_dir=Path(env["MODEL_DIR"]) if env.get("MODEL_DIR") else DEFAULT_MODEL_DIR,
            host=env.get("HOST") or "127.0.0.1",
            port=int(port) if port else DEFAULT_PORT,
        )
