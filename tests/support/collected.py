"""A registry as the server builds it, holding one published result: for collector assertions."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from monitor_service.collector import DriftCollector
from monitor_service.config import MonitorConfig
from monitor_service.results import CalculationResult, ModelStatus
from monitor_service.service import MonitorService


def registry_with(config: MonitorConfig, result: CalculationResult) -> CollectorRegistry:
    """The collector of a service built from `config`, after `result` was published for its model."""
    registry = CollectorRegistry()
    stats = [
        replace(s, status=ModelStatus().succeeded(result)) if s.name == result.model else s
        for s in MonitorService.build(config).stats()
    ]
    registry.register(DriftCollector(lambda: stats, "0.7.test"))
    return registry
