"""Topic names and their explicit creation.

Every keyed topic gets the same partition count (`Settings.partitions`): Faust refuses a table whose
changelog and source differ, and brokers (tansu included) auto-create unknown topics with their own
default, so we create every topic ourselves before anything produces or consumes. The records and
their codec (`encode`, `decode`) live in `core.records`.

| topic              | key          | value                                               |
|--------------------|--------------|-----------------------------------------------------|
| cec-releases-raw   | election id  | a `cec_release` event exactly as the source spelled it |
| releases           | election id  | a `Release` with canonical region codes (edge-normalised) |
| turnout            | region code  | one region's new figure, delta, points per hour       |
| observer-counts    | station id   | an `ObserverCount`: the `observer_count` event + its region code |
| flags              | election id  | a `Flag` in the flags-file format (per election: in order) |
| station-counts     | election id  | a `StationCounts`: a batch's observer counts of one election, re-keyed |
| dead-letter        | source topic | a `DeadLetter`: a record an agent could not use, with the reason |

Two consumer groups commit the workers' inputs (`consumer_groups`): the Faust app's (`app_id`) reads
releases and station-counts; the counts hop (streams/counts_hop.py, aiokafka's own batched consumer
in the same worker process) reads observer-counts in the group `<app_id>-counts`. A drain check reads
each topic's committed offsets from the group that commits it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from turnout_watch.core.errors import BrokerError
from turnout_watch.core.settings import Settings

log = logging.getLogger(__name__)


_TOPIC_EXISTS = 36


@dataclass(frozen=True)
class TopicNames:
    raw_releases: str
    releases: str
    turnout: str
    observer_counts: str
    flags: str
    station_counts: str
    dead_letter: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        p = settings.topic_prefix
        return cls(
            f"{p}cec-releases-raw",
            f"{p}releases",
            f"{p}turnout",
            f"{p}observer-counts",
            f"{p}flags",
            f"{p}station-counts",
            f"{p}dead-letter",
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.raw_releases,
            self.releases,
            self.turnout,
            self.observer_counts,
            self.flags,
            self.station_counts,
            self.dead_letter,
        )


def counts_group(settings: Settings) -> str:
    """The consumer group of the counts hop (observer-counts -> station-counts)."""
    return f"{settings.app_id}-counts"


def consumer_groups(settings: Settings) -> dict[str, str]:
    """{topic: the consumer group that commits it} for every topic a worker reads."""
    names = TopicNames.from_settings(settings)
    return {
        names.releases: settings.app_id,
        names.station_counts: settings.app_id,
        names.observer_counts: counts_group(settings),
    }


async def ensure_topics(bootstrap: str, settings: Settings, timeout: float = 15.0) -> TopicNames:
    """Create our topics if missing; refuse to go on if one exists with another partition count."""
    names = TopicNames.from_settings(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        raise BrokerError(f"cannot reach the broker at {bootstrap}: {exc or type(exc).__name__}") from exc
    try:
        response = await admin.create_topics(
            [NewTopic(name, settings.partitions, 1) for name in names.all()], timeout_ms=int(timeout * 1000)
        )
        for topic, code, message in (e[:3] for e in response.topic_errors):
            if code not in (0, _TOPIC_EXISTS):
                raise BrokerError(f"cannot create topic {topic}: error {code} {message or ''}".strip())
        described = await admin.describe_topics(list(names.all()))
        for topic in described:
            count = len(topic["partitions"])
            if count != settings.partitions:
                raise BrokerError(
                    f"topic {topic['topic']} has {count} partitions but this deployment uses "
                    f"{settings.partitions}; set TURNOUT_WATCH_PARTITIONS={count} or use another topic_prefix"
                )
    finally:
        await admin.close()
    log.info("topics ready (%d partitions): %s", settings.partitions, ", ".join(names.all()))
    return names


async def read_ends(
    bootstrap: str, partitions: list[TopicPartition], timeout: float = 5.0
) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition, as a consumer can actually read it.

    Not `end_offsets()`: tansu (0.6) answers ListOffsets(LATEST) with the first offset of the last
    record batch plus one, so after a multi-record batch it reports an end that is too low (the issue
    "state survives faults" measured 268 for a true 534). A fetch response's high watermark is right:
    seek to the reported end (never past the true one), fetch once, and read the watermark.
    """
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        consumer.assign(partitions)
        reported = await consumer.end_offsets(partitions)
        for tp, end in reported.items():
            consumer.seek(tp, end)
        ends: dict[TopicPartition, int] = {}
        deadline = asyncio.get_running_loop().time() + timeout
        while len(ends) < len(partitions) and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(*[tp for tp in partitions if tp not in ends], timeout_ms=100)
            for tp in partitions:
                watermark = consumer.highwater(tp)
                if watermark is not None and tp not in ends:
                    ends[tp] = max(watermark, reported[tp])
        missing = [tp for tp in partitions if tp not in ends]
        if missing:
            raise BrokerError(f"no fetch answer from {bootstrap} for {len(missing)} partitions within {timeout:.0f} s")
        return ends
    finally:
        await consumer.stop()
