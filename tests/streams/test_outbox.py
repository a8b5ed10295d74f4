"""The outbox on the real broker: records land where single sends put them, in order, acked by its futures."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from streams.outbox import Outbox
from tests.support.broker import isolated_settings
from turnout_watch.core.topics import ensure_topics, read_ends
from turnout_watch.services.broker import EmbeddedBroker


async def _read_all(bootstrap: str, topic: str, n: int) -> list[tuple[int, bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    out: list[tuple[int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(out) < n:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    out += [(tp.partition, r.key or b"", r.value or b"") for r in records]
    finally:
        await consumer.stop()
    return out


async def test_outbox_records_land_on_the_partitions_single_sends_use_in_order(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = isolated_settings(broker.bootstrap, tmp_path, partitions=4)
    names = await ensure_topics(broker.bootstrap, settings)
    single, batched = names.releases, names.turnout  # two topics of 4 partitions
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_batch_size=4096)
    await producer.start()
    try:
        # 30 keys x 40 values, ~100 bytes each: several 4 KiB batches per partition
        pad = "x" * 80
        records = [(f"KZ-{k}".encode(), f'{{"i": {i}, "pad": "{pad}"}}'.encode()) for i in range(40) for k in range(30)]
        outbox = Outbox(lambda: producer, DefaultPartitioner())
        for key, value in records:
            await outbox.add(batched, key, value)
        assert len(outbox) == len(records)
        futures = await outbox.flush()
        assert 4 < len(futures) < len(records)  # batches, not one future per record
        await asyncio.gather(*futures)
        assert len(outbox) == 0
        await asyncio.gather(*[await producer.send(single, value, key=key) for key, value in records])
        ends = await read_ends(broker.bootstrap, [TopicPartition(batched, p) for p in range(4)])
        assert sum(ends.values()) == len(records)  # acked means stored: every record readable
    finally:
        await producer.stop()
    got_single = await _read_all(broker.bootstrap, single, len(records))
    got_batched = await _read_all(broker.bootstrap, batched, len(records))
    where_single = {key: p for p, key, _ in got_single}
    assert {key: p for p, key, _ in got_batched} == where_single
    assert len(set(where_single.values())) > 1  # the keys really spread over partitions
    for partition in range(4):  # each partition holds its keys' records in the order they were added
        assert [(k, v) for p, k, v in got_batched if p == partition] == [
            (k, v) for k, v in records if where_single[k] == partition
        ]


async def test_after_a_broker_wipe_the_outbox_asks_for_the_partitions_again() -> None:
    class Producer:
        def __init__(self) -> None:
            self.partitions, self.asked = {0, 1, 2, 3}, 0

        async def partitions_for(self, topic: str) -> set[int]:
            self.asked += 1
            return self.partitions

    producer = Producer()
    outbox = Outbox(lambda: producer, DefaultPartitioner())  # type: ignore[arg-type,return-value]
    await outbox.add("t", b"KZ-11", b"{}")
    await outbox.add("t", b"KZ-15", b"{}")
    assert producer.asked == 1  # once per topic
    producer.partitions = {0}  # the topic came back with one partition
    outbox.forget_partitions()
    await outbox.add("t", b"KZ-11", b"{}")
    assert producer.asked == 2
    assert outbox._records.get(("t", 0))  # the record goes to the only partition there is now
