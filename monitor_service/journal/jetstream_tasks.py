"""Calculation tasks on a JetStream work queue: exactly one task per model per schedule tick.

Every monitor publishes each tick of each model's schedule as a task whose message id is
deterministic, `<model>:<every>:<tick>` with `tick = floor(wall clock / every)`, so however many
monitors publish it within the stream's duplicate window, JetStream stores it once. All monitors
pull from one durable consumer (`workers`): JetStream hands each task to one of them. A worker
reports `in_progress` while it calculates and acknowledges when done; a worker that dies (or hangs)
without acknowledging loses the task after `task_ack_wait`, and JetStream redelivers it to another
worker, at most `task_max_deliver` times. An acknowledged task is deleted (work-queue retention).

The duplicate window bounds how late a monitor may publish a tick and still be recognised; a tick
published later than that (a monitor paused for minutes) is a second task. Workers guard against
it by comparing the tick with the last tick recorded in the model's state (jetstream_state.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from monitor_service.journal.jetstream import MSG_ID, ClusterUnavailable, JetStreamCluster, PublishAck

log = logging.getLogger(__name__)

# A model whose tasks pile up (no worker alive) keeps only its newest few ticks.
_TASKS_PER_MODEL = 8
_TASK_MAX_AGE = 24 * 3600.0


def tick_of(every: float, now: float) -> int:
    """The schedule slot `now` falls in: the same number on every monitor whose clock agrees."""
    return math.floor(now / every)


@dataclass
class Task:
    """One calculation to run: the model, its schedule period and the tick it was scheduled for."""

    model: str
    every: float
    tick: int
    msg: Msg

    @property
    def due(self) -> float:
        """Wall-clock time the tick started."""
        return self.tick * self.every

    @property
    def deliveries(self) -> int:
        """1 on the first delivery, 2 when a worker before this one died or timed out, ..."""
        return int(self.msg.metadata.num_delivered)

    async def in_progress(self) -> None:
        """Reset the ack timer: the worker is alive and still calculating."""
        await self.msg.in_progress()

    async def ack(self, timeout: float = 5.0) -> None:
        """Done: wait until JetStream confirmed the ack (the task is then deleted, never redelivered)."""
        try:
            await self.msg.ack_sync(timeout=timeout)
        except nats.errors.Error as exc:
            raise ClusterUnavailable(
                f"the ack of task {self.model}:{self.tick} was not confirmed: {exc}"
            ) from exc

    async def nak(self, delay: float | None = None) -> None:
        """Give the task back for redelivery (after `delay` seconds)."""
        await self.msg.nak(delay=delay)

    @contextlib.asynccontextmanager
    async def kept_alive(self, interval: float) -> AsyncIterator[None]:
        """Send `in_progress` every `interval` seconds while the body runs (use < ack_wait / 2)."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.in_progress()
                except nats.errors.Error:
                    log.warning("in_progress of task %s:%d failed", self.model, self.tick)

        beating = asyncio.create_task(beat(), name=f"task-{self.model}-{self.tick}-alive")
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


class TaskQueue:
    """The work-queue stream `<prefix>_TASKS` and its one durable pull consumer `workers`."""

    def __init__(self, cluster: JetStreamCluster) -> None:
        self.cluster = cluster
        self.names = cluster.names
        self._js: JetStreamContext = cluster.jetstream
        self._sub: JetStreamContext.PullSubscription | None = None

    def stream_config(self) -> api.StreamConfig:
        config = self.cluster.config
        return api.StreamConfig(
            name=self.names.tasks_stream,
            description="drift-monitor: one calculation task per model per schedule tick",
            subjects=[f"{self.names.prefix}.tasks.>"],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            num_replicas=config.replicas,
            duplicate_window=config.duplicate_window,
            max_age=max(_TASK_MAX_AGE, config.duplicate_window),
            max_msgs_per_subject=_TASKS_PER_MODEL,
            discard=api.DiscardPolicy.OLD,
        )

    def consumer_config(self) -> api.ConsumerConfig:
        config = self.cluster.config
        return api.ConsumerConfig(
            durable_name=self.names.workers,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=config.task_ack_wait,
            max_deliver=config.task_max_deliver,
            filter_subject=f"{self.names.prefix}.tasks.>",
            deliver_policy=api.DeliverPolicy.ALL,
        )

    async def ensure(self) -> None:
        """Create the stream and the consumer when missing (every monitor may call it; idempotent)."""
        stream = self.stream_config()
        try:
            try:
                await self._js.stream_info(self.names.tasks_stream)
            except nats.js.errors.NotFoundError:
                await self._js.add_stream(stream)
            wanted = self.consumer_config()
            try:
                info = await self._js.consumer_info(self.names.tasks_stream, self.names.workers)
            except nats.js.errors.NotFoundError:
                await self._js.add_consumer(self.names.tasks_stream, wanted)
            else:
                if (info.config.ack_wait, info.config.max_deliver) != (wanted.ack_wait, wanted.max_deliver):
                    await self._update_consumer(wanted)
            self._sub = await self._js.pull_subscribe_bind(
                durable=self.names.workers, stream=self.names.tasks_stream
            )
        except nats.errors.Error as exc:
            raise ClusterUnavailable(
                f"cannot set up the task queue {self.names.tasks_stream}: {exc}"
            ) from exc

    async def _update_consumer(self, wanted: api.ConsumerConfig) -> None:
        """Apply a changed task_ack_wait / task_max_deliver (both editable on a durable consumer)."""
        try:
            await self._js.add_consumer(self.names.tasks_stream, wanted)
            log.info(
                "task consumer updated: ack_wait %gs, max_deliver %d", wanted.ack_wait, wanted.max_deliver
            )
        except nats.js.errors.APIError as exc:
            log.warning("the task consumer keeps its old ack_wait/max_deliver (%s)", exc)

    async def publish_tick(
        self, model: str, every: float, now: float | None = None
    ) -> tuple[int, PublishAck]:
        """Publish the task of the tick `now` falls in; `ack.duplicate` when another monitor was first."""
        tick = tick_of(every, time.time() if now is None else now)
        body = json.dumps({"model": model, "every": every, "tick": tick}).encode()
        headers = {MSG_ID: f"{model}:{every:g}:{tick}"}
        ack = await self.cluster.publish_message(
            self.names.task_subject(model), body, headers, stream=self.names.tasks_stream
        )
        return tick, ack

    async def pull(self, batch: int = 1, timeout: float = 1.0) -> list[Task]:
        """Up to `batch` tasks, waiting at most `timeout` s; [] when there is none."""
        if self._sub is None:
            raise RuntimeError("call ensure() before pull()")
        try:
            messages = await self._sub.fetch(batch, timeout=timeout)
        except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises both kinds when nothing came
            return []
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot pull tasks: {exc}") from exc
        tasks = []
        for msg in messages:
            try:
                spec = json.loads(msg.data)
                tasks.append(Task(str(spec["model"]), float(spec["every"]), int(spec["tick"]), msg))
            except (ValueError, KeyError, TypeError):
                log.error("dropping a malformed task on %s: %r", msg.subject, msg.data[:200])
                await msg.term()
        return tasks

    async def backlog(self) -> int:
        """Tasks waiting for a worker plus tasks being worked on (for /metrics)."""
        try:
            info = await self._js.consumer_info(self.names.tasks_stream, self.names.workers)
        except nats.errors.Error as exc:
            raise ClusterUnavailable(f"cannot read the task queue: {exc}") from exc
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
