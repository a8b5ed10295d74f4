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
| observer-aggregates| election id  | an `ObserverAggregate`: per (region, hour) deltas of observed stations' sums |
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

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
    observer_aggregates: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        p = settings.topic_prefix
        return cls(
            f"{p}cec-releases-raw",
            f"{p}releases",
            f"{p}turnout",
            f"{p}observer-counts",
            f"{p}flags",
            f"{p}observer-aggregates",
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.raw_releases,
            self.releases,
            self.turnout,
            self.observer_counts,
            self.flags,
            self.observer_aggregates,
        )


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
