"""The poller against the simulator over real loopback HTTP, publishing to the real tansu broker.

Fault tests step a manual clock and call `poll_once` directly: each fault must move its metric,
publish nothing wrong, and leave the next poll to publish the good release exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ingest.archive import Archive, is_archive, load_archive
from ingest.clock import ManualClock, ScaledClock
from ingest.metrics import ScraperMetrics
from ingest.poller import Scraper
from ingest.sink import KafkaSink
from ingest.sources import Source, load_source
from tests.support.broker import isolated_settings
from tests.support.paths import DAY_2022
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames, ensure_topics
from turnout_watch.services.broker import EmbeddedBroker, free_port
from turnout_watch.services.detect import detect_day
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.sim.cec_site import CecSimulator

pytestmark = pytest.mark.integration
DAY = load_day(DAY_2022)
AT = datetime.fromisoformat


def settings_for(broker: EmbeddedBroker, tmp: Path) -> Settings:
    return isolated_settings(broker.bootstrap, tmp)


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record now on `topic`, in partition order (one election = one key = one partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:  # not seek_to_beginning: tansu answers offset-by-timestamp lookups wrongly
            consumer.seek(tp, 0)
        seen = dict.fromkeys(partitions, 0)  # next offset per partition, from the records themselves
        out: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + 20
        while any(seen[tp] < end for tp, end in ends.items()):
            assert asyncio.get_running_loop().time() < deadline, f"{topic}: read {seen} of {ends}"
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                out.extend(json.loads(r.value) for r in records)
                seen[tp] = records[-1].offset + 1 if records else seen[tp]
        return out
    finally:
        await consumer.stop()


async def start_site(sim: CecSimulator) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(sim.app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Rig:
    sim: CecSimulator
    clock: ManualClock
    scraper: Scraper
    registry: CollectorRegistry
    topics: TopicNames
    bootstrap: str
    archive: Archive

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"source": "cec-kz", **labels})
        return value or 0.0

    async def published(self) -> list[dict[str, Any]]:
        return await read_topic(self.bootstrap, self.topics.releases)


@pytest.fixture
async def rig(broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Rig]:
    """Simulator at 10:06 (the 10:00 release is out), scraper with short timeouts, per-test topics."""
    settings = settings_for(broker, tmp_path)
    topics = await ensure_topics(broker.bootstrap, settings)
    clock = ManualClock(AT("2022-11-20T10:06:00+06:00"))
    sim = CecSimulator(DAY, clock, hold_seconds=1.0)
    runner, url = await start_site(sim)
    source = load_source("cec-kz").with_overrides(url, read_timeout=0.4, max_bytes=300_000)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    registry = CollectorRegistry()
    archive = Archive(tmp_path / "archive", dict(DAY.election.raw), source)
    sink = KafkaSink(producer, topics, DAY.election)
    scraper = Scraper(source, dict(DAY.election.raw), sink, ScraperMetrics(registry, "cec-kz"), clock, archive)
    try:
        async with scraper:
            yield Rig(sim, clock, scraper, registry, topics, broker.bootstrap, archive)
    finally:
        await producer.stop()
        await runner.cleanup()


async def test_first_poll_publishes_the_release_once_and_archives_it(rig: Rig) -> None:
    assert await rig.scraper.poll_once() == 1
    assert await rig.scraper.poll_once() == 0  # nothing changed: conditional GETs, no new release
    (record,) = await rig.published()
    assert record["as_of"] == "2022-11-20T10:00:00+06:00" and record["turnout"]["KZ-61"] == 27.03
    assert len(record["turnout"]) == 21 and "revision" not in record
    (raw,) = await read_topic(rig.bootstrap, rig.topics.raw_releases)
    assert raw["type"] == "cec_release" and raw["published_at"] == "2022-11-20T10:05:00+06:00"
    assert rig.metric("turnout_watch_scrape_releases_total", outcome="published") == 1
    assert rig.metric("turnout_watch_scrape_releases_total", outcome="duplicate") == 2  # the kk and en pages
    entries = rig.archive.entries()
    assert {e["outcome"] for e in entries} == {"published", "duplicate"}
    assert all((rig.archive.path / "raw" / e["sha256"]).is_file() for e in entries)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("5xx", "http_5xx"),
        ("timeout", "timeout"),
        ("hang", "timeout"),
        ("huge", "too_large"),
        ("truncated", None),
        ("layout", "layout"),
    ],
)
async def test_each_fault_is_counted_and_the_next_good_release_arrives(rig: Rig, fault: str, reason: str) -> None:
    assert await rig.scraper.poll_once() == 1
    rig.clock.set(AT("2022-11-20T12:06:00+06:00"))
    # Break every page of the site for one request each: lists and the three new release pages.
    for path in ("/rus/news/", "/kaz/news/", "/eng/news/") if fault != "truncated" else ():
        rig.sim.inject(fault, 1, path)
    if fault == "truncated":
        for site in ("rus", "kaz", "eng"):
            rig.sim.inject(fault, 1, f"/{site}/news/4/")
    await rig.scraper.poll_once()
    if reason:
        assert rig.metric("turnout_watch_scrape_errors_total", reason=reason) >= 1
    else:
        assert rig.metric("turnout_watch_scrape_parse_failures_total", reason="incomplete") >= 1
    records = await rig.published()
    assert all(r["turnout"] == dict(normalize(r["as_of"])) for r in records)  # nothing wrong, ever
    if fault != "layout":  # a changed layout is read through the fallback, so the release still arrives
        assert [r["as_of"][11:16] for r in records] == ["10:00"]
        assert rig.scraper.next_interval() >= rig.scraper.source.polling.fast_interval
        await rig.scraper.poll_once()
    records = await rig.published()
    assert [r["as_of"][11:16] for r in records] == ["10:00", "12:00"]


def normalize(as_of: str) -> dict[str, float]:
    from turnout_watch.core.normalize import normalize_release

    release = next(r for r in DAY.releases() if r.as_of == AT(as_of))
    return dict(normalize_release(release, DAY.election.date).release.turnout)  # type: ignore[union-attr]


async def test_a_duplicate_publication_is_not_published_again(rig: Rig) -> None:
    await rig.scraper.poll_once()
    rig.sim.inject("duplicate")
    before = rig.metric("turnout_watch_scrape_releases_total", outcome="duplicate")
    assert await rig.scraper.poll_once() == 0
    assert rig.metric("turnout_watch_scrape_releases_total", outcome="duplicate") == before + 3
    assert len(await rig.published()) == 1


async def test_a_corrected_release_is_published_as_a_revision(rig: Rig) -> None:
    await rig.scraper.poll_once()
    change = rig.sim.inject("correction", delta=0.5)
    assert await rig.scraper.poll_once() == 1
    first, revised = await rig.published()
    assert revised["revision"] == 1 and revised["as_of"] == first["as_of"]
    assert revised["turnout"][change["region"]] == change["value"] == first["turnout"][change["region"]] + 0.5
    raw = await read_topic(rig.bootstrap, rig.topics.raw_releases)
    assert [r.get("revision") for r in raw] == [None, 1]
    assert rig.metric("turnout_watch_scrape_releases_total", outcome="revision") == 1


async def test_an_incomplete_release_is_held_then_published_with_its_gaps(rig: Rig) -> None:
    grace = rig.scraper.source.incomplete_grace_seconds
    del rig.sim.items[-7].figures["KZ-79"]  # the 10:00 release never gives Shymkent
    await rig.scraper.poll_once()
    assert await rig.published() == []
    rig.clock.advance(grace + 1)
    await rig.scraper.poll_once()
    (record,) = await rig.published()
    assert "KZ-79" not in record["turnout"] and len(record["turnout"]) == 20
    (raw,) = await read_topic(rig.bootstrap, rig.topics.raw_releases)
    assert raw["missing"] == ["KZ-79"]
    assert rig.metric("turnout_watch_scrape_releases_total", outcome="partial") == 1


async def test_the_archive_replays_as_the_day_it_recorded(rig: Rig) -> None:
    for hour in (10, 12, 14):
        rig.clock.set(AT(f"2022-11-20T{hour}:06:00+06:00"))
        await rig.scraper.poll_once()
    rig.sim.inject("correction")
    await rig.scraper.poll_once()
    assert is_archive(rig.archive.path)
    day: DayFile = load_archive(rig.archive.path)
    assert day.election.election == DAY.election.election
    releases = day.releases()
    assert [(r.as_of.hour, r.raw.get("revision")) for r in releases] == [(10, None), (12, None), (14, None), (14, 1)]
    for release in releases[:3]:
        assert dict(normalize_named(release)) == normalize(release.as_of.isoformat())


def normalize_named(release: Any) -> dict[str, float]:
    from turnout_watch.core.normalize import normalize_release

    return dict(normalize_release(release, DAY.election.date).release.turnout)


async def test_a_restarted_scraper_does_not_publish_again(rig: Rig) -> None:
    await rig.scraper.poll_once()
    source: Source = rig.scraper.source
    again = Scraper(source, dict(DAY.election.raw), rig.scraper.sink, ScraperMetrics(CollectorRegistry(), "cec-kz"),
                    rig.clock, Archive(rig.archive.path, {}, source))  # fmt: skip
    async with again:
        assert await again.poll_once() == 0
    assert len(await rig.published()) == 1


async def test_overdue_and_cadence_follow_the_schedule(rig: Rig) -> None:
    polling = rig.scraper.source.polling
    await rig.scraper.poll_once()
    assert rig.scraper.overdue_seconds() == 0
    rig.clock.set(AT("2022-11-20T11:59:30+06:00"))
    assert rig.scraper.next_interval() == polling.fast_interval  # 12:00 is due within a minute
    rig.sim.inject("5xx", 1000)  # the site goes down
    rig.clock.set(AT("2022-11-20T12:20:00+06:00"))
    await rig.scraper.poll_once()
    assert rig.scraper.overdue_seconds() == pytest.approx(5 * 60)
    assert rig.metric("turnout_watch_scrape_release_overdue_seconds") == pytest.approx(5 * 60)
    for _ in range(3):
        await rig.scraper.poll_once()
    assert rig.scraper.next_interval() >= polling.backoff_base * 2**3 * 0.5  # backing off


async def test_end_to_end_every_release_reaches_the_worker_exactly_once(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Simulator at 3600x + scraper + a real Faust worker: 7 releases, each processed once, same flags."""
    settings = settings_for(broker, tmp_path)
    async with LocalPipeline(settings, workers=1) as pipeline:
        assert pipeline.topics is not None
        clock = ScaledClock(AT("2022-11-20T10:03:00+06:00"), 3600, min_wall=0.05)
        sim = CecSimulator(DAY, clock, seed=7)
        runner, url = await start_site(sim)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
        await producer.start()
        registry = CollectorRegistry()
        source = load_source("cec-kz").with_overrides(url)
        sink = KafkaSink(producer, pipeline.topics, DAY.election)
        scraper = Scraper(source, dict(DAY.election.raw), sink, ScraperMetrics(registry, "cec-kz"), clock)
        stop = asyncio.Event()
        try:
            async with scraper:
                task = asyncio.create_task(scraper.run(stop))
                for _ in range(600):
                    if len(scraper.versions) == 7 or task.done():
                        break
                    await asyncio.sleep(0.1)
                stop.set()
                await task
            await pipeline.wait_drained([pipeline.topics.releases], timeout=60)
            metrics_url = pipeline.worker_processes[0].metrics_url
            async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
                worker_metrics = await response.text()
            flags = await read_topic(pipeline.bootstrap, pipeline.topics.flags)
        finally:
            await producer.stop()
            await runner.cleanup()
    records = [r["as_of"][11:16] for r in await read_topic(broker.bootstrap, pipeline.topics.releases)]
    assert records == ["10:00", "12:00", "14:00", "16:00", "18:00", "20:00", "22:00"]
    processed = next(
        s.value
        for family in text_string_to_metric_families(worker_metrics)
        for s in family.samples
        if s.name == "turnout_watch_events_processed_total" and s.labels["stream"] == "releases"
    )
    assert processed == 7
    key = lambda f: (f["as_of"], f["region_code"], f["detector"])  # noqa: E731
    assert sorted(map(key, flags)) == sorted(key(f.to_dict()) for f in detect_day(DAY_2022).flags)
    assert registry.get_sample_value("turnout_watch_scrape_release_lag_seconds_count", {"source": "cec-kz"}) == 7
