"""This member's own cluster metrics: its connection to NATS, what it published and the tasks it did.

Per member (the `instance` label tells them apart): sum them over the members for the cluster. The
drift, quality and status series of every model are not here: the member serves them from the
cluster's shared entries through the usual collector (collector.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor_service.cluster.member import ClusterMember

P = "drift_monitor_cluster_"


class ClusterCollector(Collector):
    def __init__(self, member: ClusterMember) -> None:
        self.member = member

    def collect(self) -> Iterator[Metric]:
        member = self.member
        connected = GaugeMetricFamily(
            P + "connected", "1 while this monitor is connected to the NATS cluster."
        )
        connected.add_metric([], float(member.connected))
        yield connected
        stats = member.journal_stats()
        for name, value, doc in (
            (
                "publishes",
                stats.publishes,
                "Messages stored in JetStream by this monitor (batches and ticks).",
            ),
            (
                "duplicate_batches",
                stats.duplicates,
                "Messages JetStream already held (a retried batch or a tick another monitor published).",
            ),
            (
                "publish_retries",
                stats.publish_retries,
                "Publish attempts retried (no ack in time, election).",
            ),
            ("publish_failures", stats.publish_failures, "Publishes given up (503 to the client)."),
            ("messages_fetched", stats.messages_fetched, "Stream messages read back into windows."),
            ("reconnects", stats.reconnects, "Reconnections to the NATS cluster."),
        ):
            counter = CounterMetricFamily(P + name, doc)
            counter.add_metric([], value)
            yield counter
        tasks = CounterMetricFamily(
            P + "tasks", "Calculation tasks this monitor handled, by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(member.tasks_done.items()):
            tasks.add_metric([outcome], count)
        yield tasks
