"""Two Faust workers on one broker: each election's region series come from exactly one worker, and when
one worker is killed mid-replay the other takes its elections over with their history."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from ingest.day_publisher import ReplayPublisher, ReplayStats
from tests.support.broker import isolated_settings
from turnout_watch.core.dayfile import CecRelease, DayFile, load_day, write_day
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.services.broker import EmbeddedBroker
from turnout_watch.services.detect import detect_day
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.sim.synth import make_day

pytestmark = pytest.mark.integration
PARTITIONS = 4
SeriesKey = tuple[str, str]  # (election, region)
TURNOUT = "turnout_watch_region_turnout_percent"


def synthetic_days(folder: Path) -> tuple[list[DayFile], list[DayFile]]:
    """Eight synthetic elections with an anomaly each, two on every partition (their keys hash there):
    (one per partition whose day is over before the kill, one per partition whose day goes on after).
    Whichever partitions the killed worker owns, it owns an election of each sort."""
    partitioner = DefaultPartitioner()
    by_partition: dict[int, list[tuple[int, str]]] = {p: [] for p in range(PARTITIONS)}
    for seed in range(40):
        for kind in ("surge", "fall", "after_close", "over_100"):
            partition = partitioner(f"synthetic-{seed}-{kind}".encode(), list(range(PARTITIONS)), [])
            if len(by_partition[partition]) < 2:
                by_partition[partition].append((seed, kind))
    finished, ongoing = [], []
    for pair in by_partition.values():
        assert len(pair) == 2
        for (seed, kind), into in zip(pair, (finished, ongoing), strict=True):
            header, events = make_day(seed, kind)
            path = folder / f"{header['election']}.jsonl"
            write_day(path, header, events)
            into.append(load_day(path))
    return finished, ongoing


def part(day: DayFile, first: int | None, last: int | None) -> DayFile:
    """The day with only releases [first:last] (a replay in two halves around the kill)."""
    releases = [e for e in day.events if isinstance(e, CecRelease)]
    return DayFile(day.election, tuple(releases[first:last]), day.path)


async def scrape(url: str) -> dict[str, dict[SeriesKey, list[float]]]:
    """{family: {(election, region): [values]}} of the per-region gauges one worker serves."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
    except aiohttp.ClientConnectorError:
        return {}  # still starting (the loop that waits on this checks the process is alive)
    out: dict[str, dict[SeriesKey, list[float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "election" in sample.labels and "region" in sample.labels and "detector" not in sample.labels:
                key = (sample.labels["election"], sample.labels["region"])
                out.setdefault(sample.name, {}).setdefault(key, []).append(sample.value)
    return out


def series_count(scrapes: list[dict[str, dict[SeriesKey, list[float]]]], family: str) -> Counter[SeriesKey]:
    counts: Counter[SeriesKey] = Counter()
    for scraped in scrapes:
        for key, values in scraped.get(family, {}).items():
            counts[key] += len(values)
    return counts


async def read_flags(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        flags: list[dict[str, Any]] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                flags.extend(json.loads(r.value) for r in records)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return flags
    finally:
        await consumer.stop()


def flag_key(flag: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (flag["election"], flag["as_of"], flag["region_code"], flag["detector"], flag["severity"])


def test_killed_worker_s_elections_move_to_the_survivor(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """One worker takes the first half of eight elections' days (four of them whole); a second worker
    joins; then the second is SIGKILLed and the rest of the days is replayed. The survivor must end
    with every election's region series exactly once and the single-worker values, deltas and flags.

    Both moves need the ownership machinery: when the second worker joins, the first must drop the
    elections it hands over (or they would be served twice) and the second must rebuild them from the
    partitions (no new record arrives for them); after the kill the survivor must rebuild the finished
    elections (or they vanish) and the history of the ongoing ones (or flags that compare with the
    previous release are missed)."""
    finished, ongoing = synthetic_days(tmp_path / "days")
    days = finished + ongoing
    settings = isolated_settings(broker.bootstrap, tmp_path / "run", partitions=PARTITIONS)
    expected_values: dict[SeriesKey, float] = {}
    expected_delta: dict[SeriesKey, float] = {}
    expected_flags: set[tuple[str, ...]] = set()
    for day in days:
        offline = detect_day(day, history_dir=SHIPPED_ELECTIONS)
        for u in offline.updates:
            expected_values[(u.election, u.region_code)] = u.value
            if u.delta == u.delta:  # the gauge keeps the last delta a region had
                expected_delta[(u.election, u.region_code)] = u.delta
        expected_flags |= {flag_key(f.to_dict()) for f in offline.flags}
    assert len({k[0] for k in expected_values}) == 8 and expected_flags
    n_series = len(expected_values)

    async def scenario() -> dict[str, Any]:
        async with LocalPipeline(settings, workers=1) as pipeline:
            assert pipeline.topics is not None
            topics = pipeline.topics
            producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=5)
            await producer.start()
            publisher = ReplayPublisher(producer, topics)
            try:
                # The finished elections' whole days and the first half of the others, all at once.
                stats = ReplayStats()
                for day in finished + [part(day, None, 3) for day in ongoing]:
                    sends = []
                    for event in day.events:
                        sends.extend(await publisher.publish_event(day, event, stats))
                    await asyncio.gather(*sends)
                await pipeline.wait_drained([topics.releases], timeout=60)
                pipeline.worker_processes.append(pipeline.spawn_worker(1))
                # Both workers in the group, each election on exactly one of them with all its regions:
                # the first worker dropped what the second took, the second rebuilt what it took.
                urls = [w.metrics_url for w in pipeline.worker_processes]
                deadline = time.monotonic() + 45
                while True:
                    pipeline.check_workers()
                    scrapes = await asyncio.gather(*(scrape(u) for u in urls))
                    counts = series_count(scrapes, TURNOUT)
                    if all(scrapes) and len(counts) == n_series and set(counts.values()) == {1}:
                        break
                    if time.monotonic() > deadline:
                        per_worker = [sorted({e for e, _ in s.get(TURNOUT, {})}) for s in scrapes]
                        duplicated = [k for k, n in counts.items() if n > 1]
                        pytest.fail(
                            f"workers never split the elections: {len(counts)}/{n_series} series, "
                            f"{len(duplicated)} served twice; elections per worker: {per_worker}"
                        )
                    await asyncio.sleep(0.2)
                before_kill = [{e for e, _ in s[TURNOUT]} for s in scrapes]
                killed = pipeline.kill_worker(1)
                # The rest of each day, paced (1 day-hour = 0.5 s) while the group notices the crash.
                await asyncio.gather(*(publisher.publish_day(part(day, 3, None), speed=7200) for day in ongoing))
                await pipeline.wait_pipeline_drained(timeout=90)
                survivor = await scrape(pipeline.worker_processes[0].metrics_url)
                flags = await read_flags(pipeline.bootstrap, topics.flags)
            finally:
                await producer.stop()
        return {"before": before_kill, "killed": killed, "after": survivor, "flags": flags}

    outcome = asyncio.run(scenario())
    on_killed = outcome["before"][1]
    assert on_killed & {d.election.election for d in finished}, "the killed worker owned no finished election"
    assert on_killed & {d.election.election for d in ongoing}, "the killed worker owned no ongoing election"
    after = outcome["after"]
    turnout = after[TURNOUT]
    # every (election, region) exactly once on the only live worker, with the single-worker final values
    assert {k: len(v) for k, v in turnout.items()} == dict.fromkeys(expected_values, 1)
    assert {k: v[0] for k, v in turnout.items()} == expected_values
    # deltas need the previous release: the survivor had it only by rebuilding the killed worker's history
    delta = after["turnout_watch_region_delta_points"]
    assert {k: v[0] for k, v in delta.items()} == pytest.approx(expected_delta)
    published = Counter(flag_key(f) for f in outcome["flags"])
    assert set(published) == expected_flags
    assert {k: n for k, n in published.items() if n > 2} == {}  # at-least-once: a redelivery at most
