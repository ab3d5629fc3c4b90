"""A worker process that takes one calculation task and then hangs without acknowledging it,
to be SIGKILLed by a test (``python -m tests.cluster.task_worker``).

The cluster section comes as JSON in $DM_TEST_CLUSTER (without the password) and the password from
$DRIFT_MONITOR_NATS_PASSWORD, the way a monitor gets it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from monitor_service.config import ClusterConfig
from monitor_service.journal.jetstream import JetStreamCluster
from monitor_service.journal.jetstream_tasks import TaskQueue


async def main() -> None:
    settings = json.loads(os.environ["DM_TEST_CLUSTER"])
    settings["password"] = os.environ["DRIFT_MONITOR_NATS_PASSWORD"]
    cluster = await JetStreamCluster.connect(ClusterConfig.model_validate(settings), name="doomed-worker")
    queue = TaskQueue(cluster)
    await queue.ensure()
    while not (tasks := await queue.pull(timeout=1.0)):
        pass
    [task] = tasks
    sys.stdout.write(f"working on {task.model} {task.tick} {task.deliveries}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()  # calculating for ever: no ack, no in_progress


if __name__ == "__main__":
    asyncio.run(main())
