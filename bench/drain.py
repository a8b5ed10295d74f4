"""A drain check benches can trust on tansu, whatever version of turnout-watch they drive.

tansu 0.6 answers ListOffsets(LATEST) — aiokafka's `end_offsets()` — with the first offset of a
partition's last record batch plus one, so a drain check built on it says "drained" while most of a
burst is unprocessed (issue "honest benchmarks": 69-80 % processed, rates 1.3-11x too high). Here the
end is the high watermark of a real fetch, and the committed offsets of the group that reads each topic
must reach it. Kept
self-contained (aiokafka only) so the same check runs against an older checkout for a before/after.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def true_ends(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        consumer.assign(tps)
        reported = await consumer.end_offsets(tps)
        for tp, end in reported.items():
            consumer.seek(tp, end)
        ends: dict[TopicPartition, int] = {}
        while len(ends) < len(tps):
            await consumer.getmany(*[tp for tp in tps if tp not in ends], timeout_ms=100)
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None:
                    ends[tp] = max(hw, reported[tp])
        return ends
    finally:
        await consumer.stop()


def group_of(group: str | dict[str, str], topic: str) -> str:
    """`group`: one consumer group for every topic, or {topic: the group that commits it} (a worker
    commits observer-counts in its counts hop's own group, `turnout_watch.core.topics.consumer_groups`)."""
    return group if isinstance(group, str) else group[topic]


async def lag(bootstrap: str, group: str | dict[str, str], topics: list[str], partitions: int) -> int:
    tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    ends = await true_ends(bootstrap, tps)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = {}
        for name in sorted({group_of(group, t) for t in topics}):
            mine = [tp for tp in tps if group_of(group, tp.topic) == name]
            committed.update(await admin.list_consumer_group_offsets(name, partitions=mine))
    finally:
        await admin.close()
    total = 0
    for tp, end in ends.items():
        meta = committed.get(tp)
        total += abs(end - (meta.offset if meta is not None and meta.offset >= 0 else 0))
    return total


async def wait_drained(
    bootstrap: str, group: str | dict[str, str], topics: list[str], partitions: int, timeout: float = 600
) -> float:
    """Seconds until the group (or each topic's group) committed everything on `topics` (true ends)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await lag(bootstrap, group, topics, partitions) == 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise TimeoutError(f"not drained within {timeout} s")
