"""A batch's many small records handed to the broker as a few Kafka record batches.

A release gives ~20 per-region records on the turnout topic; a worker taking 500 releases in one batch
publishes ~10,000 of them. Handing each to the producer (`Producer.send`) costs a future, a partitioner
call (murmur2 in Python) and the accumulator's bookkeeping per record: about a quarter of the worker's
time on the releases path (bench/agent_throughput.py --profile). The `Outbox` gathers the batch's
records per partition and appends them to aiokafka's own `BatchBuilder`s (`create_batch` /
`send_batch`, the producer's public batch API): one future per Kafka batch.

The records land where `Producer.send` would have put them: the partition is Faust's producer's
partitioner (aiokafka's `DefaultPartitioner`, murmur2 of the key over the topic's partitions), asked
once per topic and key. Within a partition the records keep the order they were added in. The caller
awaits every future before its input is acknowledged, as with single sends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer


class Outbox:
    """Records gathered per (topic, partition), sent by `flush` as the producer's own batches."""

    def __init__(self, producer: Callable[[], AIOKafkaProducer], partitioner: Any) -> None:
        self._producer = producer  # asked each time: Faust makes a new one if its producer restarts
        self._partitioner = partitioner
        self._partitions: dict[str, list[int]] = {}
        self._where: dict[tuple[str, bytes], int] = {}
        self._records: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}

    async def add(self, topic: str, key: bytes, value: bytes) -> None:
        """Hold a record for the next `flush`."""
        partition = self._where.get((topic, key))
        if partition is None:
            partitions = self._partitions.get(topic)
            if partitions is None:
                partitions = self._partitions[topic] = sorted(await self._producer().partitions_for(topic))
            partition = self._where[topic, key] = self._partitioner(key, partitions, partitions)
        self._records.setdefault((topic, partition), []).append((key, value))

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())

    async def flush(self) -> list[Awaitable[Any]]:
        """Hand every held record to the producer; return the futures the broker's acks resolve."""
        futures: list[Awaitable[Any]] = []
        held, self._records = self._records, {}
        producer = self._producer()
        for (topic, partition), records in held.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    # an empty batch takes any record; one past the broker's limit is refused there, and
                    # the worker restarts on the failed future (turnout records are ~250 bytes)
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    def forget_partitions(self) -> None:
        """Ask the broker for the topics' partitions again: after it came back empty, a topic may have
        been created anew (streams/broker_reset.py)."""
        self._partitions.clear()
        self._where.clear()
