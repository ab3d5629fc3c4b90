"""Cluster mode: this monitor as one member of many sharing NATS JetStream (docs/cluster.md).

`member` (ticks, tasks, shared entries, the mirror every member serves metrics from), `entry` (what
the cluster knows of one model, in the state bucket) and `codec` (results to JSON and back, exactly).
The streams, the task queue, the buckets and the journal adapter live in `monitor_service.journal`.
"""
