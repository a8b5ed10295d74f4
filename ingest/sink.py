"""Where scraped releases go: both topics, exactly as `ingest/day_publisher.py` publishes a recorded day.

The raw topic gets the `cec_release` event as published (source spellings, URL, sha256 of the raw
page, `revision`); the releases topic gets it normalised to region codes, plus `revision`, so the
Faust agents treat scraped and replayed releases alike. Both sends are awaited until the broker
acknowledged them (acks=all): only then does the scraper count the release as published.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from turnout_watch.core.dayfile import CecRelease, Election, parse_event
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.normalize import normalize_release
from turnout_watch.core.records import encode
from turnout_watch.core.topics import TopicNames


class KafkaSink:
    def __init__(self, producer: AIOKafkaProducer, topics: TopicNames, election: Election) -> None:
        self.producer, self.topics, self.election = producer, topics, election
        self.gazetteer = default_gazetteer()

    def records(self, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(raw record, normalised record) for one `cec_release` event; raises if nothing can be placed."""
        release = parse_event(event, "scraped release")
        if not isinstance(release, CecRelease):  # the scraper builds only cec_release events
            raise TurnoutWatchError(f"the scraper's sink takes cec_release events, not {event.get('type')!r}")
        normalized = normalize_release(release, self.election.date, self.gazetteer, election=self.election)
        if normalized.release is None:
            raise TurnoutWatchError("; ".join(normalized.problems))
        return event, normalized.release.to_dict()

    async def __call__(self, event: dict[str, Any]) -> None:
        raw, record = self.records(event)
        key = self.election.election.encode()
        sends = [
            await self.producer.send(self.topics.raw_releases, encode(raw), key=key),
            await self.producer.send(self.topics.releases, encode(record), key=key),
        ]
        await asyncio.gather(*sends)
