"""`turnout-watch restore`: put a day back on a broker that lost it, from the durable sources.

The embedded broker keeps its topics in memory; when it dies, what the watch room needs of the day
survives in two places: the scraper's archive (every page it published, raw, re-parsed here exactly as
`replay` does) and the observer intake's SQLite (every count it acknowledged, as it was published).
This publishes both again, in the order the watch room learned of them (the pages' times, the counts'
`received_at`), to the releases and observer-counts topics.

Nothing is raised twice: the workers that survived the broker kept their trackers and the keys of the
flags they published (streams/broker_reset.py noticed the empty topics and reads them from the
start), and every effect is keyed — a release already judged is stale, a count already held replaces
itself, a flag already published is not published again. A worker started after the loss starts
empty and judges the day afresh, as one clean pass would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from ingest.archive import is_archive, load_archive
from ingest.day_publisher import ReplayPublisher, ReplayStats
from turnout_watch.core.dayfile import CecRelease, DayFile, load_day
from turnout_watch.core.errors import DayFileError, RecordError
from turnout_watch.core.records import ObserverCount, encode
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import ensure_topics

log = logging.getLogger(__name__)


@dataclass
class RestoreStats:
    releases: int = 0
    observer_counts: int = 0
    unreadable_counts: int = 0
    problems: list[str] = field(default_factory=list)


def accepted_counts(db: Path) -> tuple[list[ObserverCount], int]:
    """Every count the intake holds, as it was published; and how many rows could not be read back."""
    if not db.is_file():
        raise DayFileError(f"{db}: no observer intake database there")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in conn.execute("SELECT record FROM reports")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DayFileError(f"{db}: cannot read the intake's accepted counts: {exc}") from exc
    counts, bad = [], 0
    for text in rows:
        try:
            counts.append(ObserverCount.from_dict(json.loads(text)))
        except (RecordError, ValueError, TypeError, KeyError):
            bad += 1
    return counts, bad


async def restore(
    settings: Settings,
    bootstrap: str,
    *,
    days: Iterable[Path] = (),
    observers_db: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RestoreStats:
    """Publish the releases of `days` (scraper archives or day files) and the intake's counts again, in
    the order they were learned. A day file's own observer counts are published too."""
    loaded = [load_archive(path) if is_archive(path) else load_day(path) for path in days]
    events: list[tuple[Any, int, DayFile | None, Any]] = []
    for day in loaded:
        for e in day.events:
            if isinstance(e, CecRelease):
                events.append((e.event_time, 0, day, e))
            elif isinstance(e, ObserverCount):
                events.append((e.event_time, 1, None, e))
    stats = RestoreStats()
    if observers_db is not None:
        counts, stats.unreadable_counts = accepted_counts(observers_db)
        events.extend((c.received_at, 1, None, c) for c in counts)
        if stats.unreadable_counts:
            stats.problems.append(f"{stats.unreadable_counts} rows of {observers_db} could not be read back")
    events.sort(key=lambda item: (item[0], item[1]))
    topics = await ensure_topics(bootstrap, settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        publisher, published = ReplayPublisher(producer, topics), ReplayStats()
        pending: list[asyncio.Future[Any]] = []
        for done, (_when, _kind, source, event) in enumerate(events, start=1):
            if source is not None:
                pending.extend(await publisher.publish_event(source, event, published))
            else:
                key = event.station.encode()
                pending.append(await producer.send(topics.observer_counts, encode(event), key=key))
                published.observer_counts += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
            if on_progress is not None and (done % 1000 == 0 or done == len(events)):
                on_progress(done, len(events))
        await asyncio.gather(*pending)  # every record durable before we say so
    finally:
        await producer.stop()
    stats.releases, stats.observer_counts = published.releases, published.observer_counts
    stats.problems.extend(published.problems)
    return stats
