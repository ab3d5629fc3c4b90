"""How long a hostile 16 MiB body stalls an asyncio event loop: parsed on the loop, in a thread, or
refused by the body budget (payload.py) before parsing.

A ticker coroutine wakes every millisecond and records how late it woke; meanwhile the loop handles
one nested-array body (`{"rows": [{"num_00": [[], [], ...]}]}`, 16 MiB) in each of three ways, each
--repeat times:

  on the loop    orjson.loads(body) in the coroutine (what the monitor did before)
  in a thread    await asyncio.to_thread(orjson.loads, body): the loop is free, but orjson holds the
                 GIL while it builds objects, so the ticker waits anyway
  budget         payload.parse_items(..., Budget(...)): a bytes count and a typed decode that stops
                 at the first nested value, on the loop

It prints the worst and the median lateness of the ticker and the wall time of each handling.

    python bench/loop_stall.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import orjson
from attacks import nested_body_bytes

from monitor_service.errors import MonitorError
from monitor_service.payload import Budget, parse_items


async def _ticker(lateness: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        planned = time.perf_counter() + 0.001
        await asyncio.sleep(0.001)
        lateness.append(time.perf_counter() - planned)


async def _measure(handle: Callable[[], Awaitable[None]]) -> tuple[float, float, float]:
    lateness: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lateness, stop))
    await asyncio.sleep(0.05)
    lateness.clear()
    started = time.perf_counter()
    await handle()
    wall = time.perf_counter() - started
    await asyncio.sleep(0.05)
    stop.set()
    await ticker
    return max(lateness) * 1000, statistics.median(lateness) * 1000, wall * 1000


async def main(repeat: int) -> None:
    body = nested_body_bytes()

    async def on_loop() -> None:
        orjson.loads(body)

    async def in_thread() -> None:
        await asyncio.to_thread(orjson.loads, body)

    async def budget() -> None:
        try:
            parse_items(body, False, "rows", Budget(10_000, 20))
        except MonitorError:
            pass

    print(f"body: {len(body) / 2**20:.1f} MiB of nested arrays; ticker every 1 ms")
    print(f"{'handling':<14} {'worst lateness':>15} {'median':>8} {'wall':>9}")
    for name, handle in (("on the loop", on_loop), ("in a thread", in_thread), ("budget", budget)):
        for _ in range(repeat):
            worst, median, wall = await _measure(handle)
            print(f"{name:<14} {worst:>12.1f} ms {median:>5.2f} ms {wall:>6.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
