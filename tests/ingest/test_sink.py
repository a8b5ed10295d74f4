"""KafkaSink: a scraped release goes to the raw topic as scraped and to the releases topic normalised,
both acknowledged by the real broker before the scraper counts it published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from ingest.sink import KafkaSink
from tests.support.broker import isolated_settings
from tests.support.intake import ELECTION, read_topic
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.topics import TopicNames, ensure_topics
from turnout_watch.services.broker import EmbeddedBroker


def scraped(**turnout: float) -> dict[str, Any]:
    """A release as the scraper's `release_event` builds it (source spellings, URL, page hash, revision)."""
    return {
        "type": "cec_release",
        "election": ELECTION.election,
        "as_of": "2022-11-20T10:00:00+06:00",
        "published_at": "2022-11-20T10:06:30+06:00",
        "turnout_pct": turnout,
        "source": "https://www.election.gov.kz/rus/news/1",
        "raw_sha256": "ab" * 32,
        "revision": 1,
    }


@pytest.fixture
async def sink(broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[KafkaSink]:
    settings = isolated_settings(broker.bootstrap, tmp_path)
    topics = await ensure_topics(broker.bootstrap, settings)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        yield KafkaSink(producer, topics, ELECTION)
    finally:
        await producer.stop()


async def test_a_release_goes_out_as_scraped_and_normalised(sink: KafkaSink, broker: EmbeddedBroker) -> None:
    event = scraped(**{"Алматы": 20.5, "Astana": 18.25, "Atlantis": 3.0})
    await sink(event)
    topics: TopicNames = sink.topics
    [raw] = await read_topic(broker.bootstrap, topics.raw_releases, 1)
    assert raw.pop("_key") == ELECTION.election and raw == event
    [release] = await read_topic(broker.bootstrap, topics.releases, 1)
    assert release["_key"] == ELECTION.election
    assert release["turnout"] == {"KZ-75": 20.5, "KZ-71": 18.25}  # the unknown name is left out
    assert (release["as_of"], release["revision"]) == ("2022-11-20T10:00:00+06:00", 1)
    assert (release["timezone"], release["polls_close"]) == ("Asia/Almaty", "2022-11-20T20:00:00+06:00")


async def test_nothing_is_sent_for_a_release_that_places_no_region(sink: KafkaSink, broker: EmbeddedBroker) -> None:
    with pytest.raises(TurnoutWatchError, match="Atlantis"):
        await sink(scraped(Atlantis=3.0))
    observer_count = {**scraped(), "type": "observer_count"}
    with pytest.raises(TurnoutWatchError):
        sink.records(observer_count)
    await sink(scraped(Astana=18.25))
    assert [r["turnout"] for r in await read_topic(broker.bootstrap, sink.topics.releases, 1)] == [{"KZ-71": 18.25}]
    assert len(await read_topic(broker.bootstrap, sink.topics.raw_releases, 1)) == 1
