"""Publish a recorded election day to Kafka in the order the watch room learned of it, time compressed.

Each CEC release goes out twice: as published (source spellings, for the archive and audits) and
normalised at the edge (region codes) for the agents. Observer counts go out keyed by station as the
`ObserverCount` records the day-file reader made of them (region code resolved there). Nothing counts
as published until the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from turnout_watch.core.dayfile import CecRelease, DayFile, Event, UnplacedCount
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.normalize import normalize_release
from turnout_watch.core.records import encode
from turnout_watch.core.topics import TopicNames


@dataclass
class ReplayStats:
    releases: int = 0
    region_figures: int = 0
    observer_counts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return self.releases + self.observer_counts


class ReplayPublisher:
    def __init__(self, producer: AIOKafkaProducer, topics: TopicNames) -> None:
        self.producer = producer
        self.topics = topics
        self.gazetteer = default_gazetteer()

    async def publish_event(self, day: DayFile, event: Event, stats: ReplayStats) -> list[asyncio.Future[Any]]:
        """Hand the event's records to the producer; the returned futures resolve once the broker has them."""
        election = day.election
        sends = []
        if isinstance(event, CecRelease):
            key = event.election.encode()
            sends.append(await self.producer.send(self.topics.raw_releases, encode(event.raw), key=key))
            normalized = normalize_release(event, election.date, self.gazetteer, election=election)
            stats.problems.extend(normalized.problems)
            if normalized.release is not None:
                sends.append(await self.producer.send(self.topics.releases, encode(normalized.release), key=key))
                stats.releases += 1
                stats.region_figures += len(normalized.release.turnout)
        elif isinstance(event, UnplacedCount):
            stats.problems.append(f"observer count {event.station}: {event.problem}; not published")
        else:
            sends.append(
                await self.producer.send(self.topics.observer_counts, encode(event), key=event.station.encode())
            )
            stats.observer_counts += 1
        return sends

    async def publish_day(
        self,
        day: DayFile,
        speed: float | None,
        on_progress: Callable[[datetime], None] | None = None,
    ) -> ReplayStats:
        """Publish every event; `speed` None means as fast as the broker takes them."""
        stats = ReplayStats()
        events = sorted(day.events, key=lambda e: e.event_time)  # stable: file order breaks ties
        if not events:
            return stats
        start_event, start_wall = events[0].event_time, time.monotonic()
        unacked: list[asyncio.Future[Any]] = []
        for event in events:
            if speed:
                due = (event.event_time - start_event).total_seconds() / speed
                wait = due - (time.monotonic() - start_wall)
                if wait > 0:
                    await asyncio.gather(*unacked)  # paced: each event is durable before the next is due
                    unacked.clear()
                    await asyncio.sleep(wait)
            unacked.extend(await self.publish_event(day, event, stats))
            if len(unacked) >= 5000:
                await asyncio.gather(*unacked)
                unacked.clear()
            if on_progress:
                on_progress(event.event_time)
        await asyncio.gather(*unacked)
        return stats
