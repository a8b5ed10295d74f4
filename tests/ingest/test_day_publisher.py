"""ReplayPublisher: a recorded day onto the real broker in the order the watch room learned of it;
releases twice (as published, normalised), observer counts keyed by station with their region code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from ingest.day_publisher import ReplayPublisher
from tests.support.broker import isolated_settings
from tests.support.intake import ELECTION, read_topic
from turnout_watch.core.dayfile import DayFile, load_day, write_day
from turnout_watch.core.topics import TopicNames, ensure_topics
from turnout_watch.services.broker import EmbeddedBroker

NAME = ELECTION.election


def release(as_of: str, published_at: str, **turnout: float) -> dict[str, Any]:
    return {"type": "cec_release", "election": NAME, "as_of": f"2022-11-20T{as_of}:00+06:00",
            "published_at": f"2022-11-20T{published_at}:00+06:00", "turnout_pct": turnout}  # fmt: skip


def observed(station: str, region: str, received: str, voted: int) -> dict[str, Any]:
    return {"type": "observer_count", "election": NAME, "station": station, "region": region,
            "observed_at": "2022-11-20T10:00:00+06:00", "received_at": f"2022-11-20T{received}:00+06:00",
            "registered": 2374, "voted": voted, "source": "tally", "observer": "obs-1"}  # fmt: skip


EVENTS = [
    release("10:00", "10:05", Almaty=20.5, Astana=18.25, Atlantis=3.0),
    observed("75-0001", "Алматы", "10:02", 480),  # learned of before the release, so published first
    observed("99-0001", "Atlantis", "10:03", 10),
    release("12:00", "12:05", Almaty=40.0),
]


@pytest.fixture
def day(tmp_path: Path) -> DayFile:
    path = tmp_path / "day.jsonl"
    write_day(path, ELECTION.raw, EVENTS)
    return load_day(path)


@pytest.fixture
async def publisher(broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[ReplayPublisher]:
    settings = isolated_settings(broker.bootstrap, tmp_path)
    topics = await ensure_topics(broker.bootstrap, settings)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        yield ReplayPublisher(producer, topics)
    finally:
        await producer.stop()


async def test_a_day_is_published_in_the_order_it_was_learned(
    publisher: ReplayPublisher, day: DayFile, broker: EmbeddedBroker
) -> None:
    seen: list[datetime] = []
    stats = await publisher.publish_day(day, speed=None, on_progress=seen.append)
    assert (stats.releases, stats.region_figures, stats.observer_counts, stats.events) == (2, 3, 1, 3)
    assert len(stats.problems) == 2 and all("Atlantis" in p for p in stats.problems)
    assert stats.problems[0].startswith("observer count 99-0001") and stats.problems[0].endswith("not published")
    assert stats.problems[1].startswith("release as of 2022-11-20T10:00:00+06:00")
    assert seen == sorted(e.event_time for e in day.events) and len(seen) == 4

    topics: TopicNames = publisher.topics
    raw = await read_topic(broker.bootstrap, topics.raw_releases, 2)
    assert [{k: v for k, v in r.items() if k != "_key"} for r in raw] == [EVENTS[0], EVENTS[3]]  # as published
    releases = await read_topic(broker.bootstrap, topics.releases, 2)
    assert [r["turnout"] for r in releases] == [{"KZ-75": 20.5, "KZ-71": 18.25}, {"KZ-75": 40.0}]
    assert {r["_key"] for r in raw + releases} == {NAME}
    [count] = await read_topic(broker.bootstrap, topics.observer_counts, 1)
    assert count.pop("_key") == "75-0001"
    assert count == {**EVENTS[1], "region_code": "KZ-75"}  # as recorded, plus the region code


async def test_a_speed_paces_the_day(publisher: ReplayPublisher, day: DayFile, broker: EmbeddedBroker) -> None:
    span = (day.events[-1].event_time - min(e.event_time for e in day.events)).total_seconds()
    started = time.monotonic()
    stats = await publisher.publish_day(day, speed=span / 0.3)  # the day in 0.3 s
    assert time.monotonic() - started >= 0.3
    assert stats.events == 3
    assert len(await read_topic(broker.bootstrap, publisher.topics.releases, 2)) == 2
