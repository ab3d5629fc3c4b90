"""The monitor's app for Granian (bench/attacks.py compares servers): `granian --factory granian_app:app`.

Bench only: Granian is no project dependency. The config file comes from DRIFT_MONITOR_CONFIG.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from monitor_service.app import create_app
from monitor_service.config import load_config


def app() -> FastAPI:
    path = Path(os.environ["DRIFT_MONITOR_CONFIG"])
    return create_app(load_config(path), config_path=path)
