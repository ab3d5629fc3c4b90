"""Streaming drift monitor sidecar: buffer inference rows, run Evidently, export to Prometheus."""

from __future__ import annotations

__version__ = "0.1.0"
