"""Faults on a real broker with real worker processes: the numbers after a fault equal one clean pass.

The day is the real 2022 presidential day with simulated observer counts of 300 stations, among them
corrected counts (a later observation with other figures) and resends (the same count again), and
some commissions' figures above their observers' tallies (station flags at several hours).

Not here: official figures above the observers' estimate. That comparison runs whenever counts or a
release reach the election's worker, so its flags depend on how counts and releases interleave there
— which differs between offline `detect` and a live run, and between two live runs (see the closing
note of issue 12: it needs evaluation points in event time). The
reference is offline `detect` of the same events: its last figure and observers' estimate per region,
and its flags. After each fault, the worker's `/metrics` and the flags topic must give exactly those,
each flag once (streams/agents.py, streams/ownership.py, streams/broker_reset.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from ingest.day_publisher import ReplayPublisher, ReplayStats
from tests.support.broker import isolated_settings
from turnout_watch.core.dayfile import DayFile, load_day, write_day
from turnout_watch.core.records import Flag, encode
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.core.topics import ensure_topics, read_ends
from turnout_watch.services.broker import launch_broker, terminate
from turnout_watch.services.detect import DetectResult, detect_day
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.services.restore import restore
from turnout_watch.sim.observers import make_stations, simulate_counts

pytestmark = pytest.mark.integration
DAY = SHIPPED_ELECTIONS / "kz-2022-11-20-presidential.jsonl"
Sample = dict[str, dict[tuple[tuple[str, str], ...], float]]


def day_with_corrections(folder: Path, seed: int = 5) -> tuple[DayFile, list[dict[str, Any]]]:
    """The real day's releases and simulated counts, with corrections and resends among the counts."""
    real = load_day(DAY)
    counts = simulate_counts(
        real,
        make_stations(real.election, 300, seed),
        seed,
        inflate_commission={"KZ-75": 4.0, "KZ-47": 4.0},  # some protocols above their tallies
        inflate_share=0.4,
    )
    rng = random.Random(seed)
    extra = []
    for count in counts:
        if rng.random() < 0.08:  # the observer miscounted and sends the right figure ten minutes on
            received = datetime.fromisoformat(count["received_at"]) + timedelta(minutes=10)
            corrected = max(0, count["voted"] + rng.choice((-40, -15, 20, 60)))
            extra.append(  # same hour, same observation time: the later report replaces the earlier
                {**count, "voted": min(corrected, count["registered"]), "received_at": received.isoformat(),
                 "report_id": count["report_id"] + "-fix"}
            )  # fmt: skip
        elif rng.random() < 0.05:  # the phone did not see the answer and sends it again
            received = datetime.fromisoformat(count["received_at"]) + timedelta(minutes=3)
            extra.append({**count, "received_at": received.isoformat(), "report_id": count["report_id"] + "-again"})
    header = json.loads(DAY.read_text(encoding="utf-8").splitlines()[0])
    events = [json.loads(line) for line in DAY.read_text(encoding="utf-8").splitlines()[1:]] + counts + extra
    events.sort(key=lambda e: e.get("received_at") or e["published_at"])
    path = folder / "day.jsonl"
    write_day(path, header, events)
    return load_day(path), events


def expected_figures(result: DetectResult) -> Sample:
    """What a worker's /metrics should show after the day: the offline run's last values."""
    out: Sample = {}
    for update in result.updates:
        labels = (("election", update.election), ("region", update.region_code))
        out.setdefault("turnout_watch_region_turnout_percent", {})[labels] = update.value
    latest: dict[str, Any] = {}
    for estimate in result.estimates:
        kept = latest.get(estimate.region_code)
        if kept is None or estimate.as_of >= kept.as_of:
            latest[estimate.region_code] = estimate
    for code, estimate in latest.items():
        labels = (("election", estimate.election), ("region", code))
        out.setdefault("turnout_watch_region_observed_turnout_percent", {})[labels] = estimate.estimate
        out.setdefault("turnout_watch_region_observed_se_points", {})[labels] = estimate.se
        out.setdefault("turnout_watch_region_observed_stations", {})[labels] = float(estimate.stations)
    counts = Counter((f.election, f.detector, f.severity) for f in result.flags)
    for (election, detector, severity), n in counts.items():
        labels = (("detector", detector), ("election", election), ("severity", severity))
        out.setdefault("turnout_watch_election_flags", {})[labels] = float(n)
    return out


async def scrape(urls: Iterable[str], families: Iterable[str]) -> Sample:
    wanted, out = set(families), {}
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url) as response:
                text = await response.text()
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name in wanted:
                        labels = tuple(sorted(sample.labels.items()))
                        series = out.setdefault(sample.name, {})
                        assert labels not in series, f"{sample.name}{labels} served twice"
                        series[labels] = sample.value
    return out


def assert_same(got: Sample, want: Sample) -> None:
    for family, series in want.items():
        assert set(got.get(family, {})) == set(series), family
        for labels, value in series.items():
            assert math.isclose(got[family][labels], value, rel_tol=1e-9, abs_tol=1e-9), (family, labels)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await read_ends(bootstrap, tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


async def publish(bootstrap: str, pipeline: LocalPipeline, day: DayFile, events: Iterable[Any]) -> None:
    assert pipeline.topics is not None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        publisher, stats, pending = ReplayPublisher(producer, pipeline.topics), ReplayStats(), []
        for event in events:
            pending.extend(await publisher.publish_event(day, event, stats))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


FAMILIES = (
    "turnout_watch_region_turnout_percent",
    "turnout_watch_region_observed_turnout_percent",
    "turnout_watch_region_observed_se_points",
    "turnout_watch_region_observed_stations",
    "turnout_watch_election_flags",
)


def flag_keys(records: Iterable[Any]) -> list[str]:
    return [Flag.from_dict(json.loads(r.value)).key for r in records]


@pytest.mark.parametrize(("workers", "kill_after"), [(1, None), (1, 0.0), (1, 0.25), (1, 0.6), (2, 0.25)])
def test_a_killed_worker_s_successor_gives_the_numbers_of_one_clean_pass(
    tmp_path: Path, workers: int, kill_after: float | None
) -> None:
    """SIGKILL mid-batch (0 s after publishing), between publish and commit (0.25 s, commits every
    0.5 s) and once idle (0.6 s, or None: no kill). The successor re-reads what was not committed.
    With two workers, one is killed and the survivor takes its partitions over (no new worker)."""
    day, _ = day_with_corrections(tmp_path)
    want = detect_day(day, history_dir=SHIPPED_ELECTIONS)
    # the reference has figures and flags of both observer detectors, at several hours, to compare
    assert {u.region_code for u in want.updates} and want.estimates
    assert len({f.as_of for f in want.flags if f.detector == "protocol_above_tally"}) >= 2

    async def scenario() -> tuple[Sample, list[str]]:
        broker = launch_broker(log_path=tmp_path / "broker.log")
        try:
            settings = isolated_settings(broker.bootstrap, tmp_path / "run", history_dir=SHIPPED_ELECTIONS)
            async with LocalPipeline(settings, workers=workers) as pipeline:
                events = list(day.events)
                third = len(events) // 3
                await publish(broker.bootstrap, pipeline, day, events[:third])
                await pipeline.wait_pipeline_drained(timeout=120)
                await publish(broker.bootstrap, pipeline, day, events[third : 2 * third])
                if kill_after is not None:
                    await asyncio.sleep(kill_after)
                    pipeline.kill_worker(0)
                    if workers == 1:
                        pipeline.worker_processes.append(pipeline.spawn_worker(1))
                await publish(broker.bootstrap, pipeline, day, events[2 * third :])
                await pipeline.wait_pipeline_drained(timeout=180)
                assert pipeline.topics is not None
                got = await _settled(pipeline, want)
                return got, flag_keys(await read_topic(broker.bootstrap, pipeline.topics.flags))
        finally:
            broker.stop()

    got, keys = asyncio.run(scenario())
    assert_same(got, expected_figures(want))
    assert sorted(keys) == sorted(f.key for f in want.flags)  # each flag once, and every one of them


async def _settled(pipeline: LocalPipeline, want: DetectResult, timeout: float = 30.0) -> Sample:
    """The workers' figures once they equal the reference (metrics follow the commit by a batch), or the
    last scrape when the time is up (the assertion then shows the difference)."""
    expected = expected_figures(want)
    deadline = time.monotonic() + timeout
    while True:
        got = await scrape([w.metrics_url for w in pipeline.worker_processes], FAMILIES)
        try:
            assert_same(got, expected)
            return got
        except AssertionError:
            if time.monotonic() > deadline:
                return got
        await asyncio.sleep(0.5)


def test_a_broker_that_comes_back_empty_is_noticed_and_the_day_restored(tmp_path: Path) -> None:
    """The broker dies mid-day and comes back empty on the same port. The worker notices (log, metric),
    reads the new topics from the start; `restore` publishes what the durable sources hold (here the
    day file of what had been published); the day goes on. The numbers are those of one clean pass and
    no flag is published twice across the old and the new flags topic."""
    day, _ = day_with_corrections(tmp_path)
    want = detect_day(day, history_dir=SHIPPED_ELECTIONS)
    events = list(day.events)
    half = len(events) // 2
    durable = tmp_path / "published-so-far.jsonl"
    header = json.loads(DAY.read_text(encoding="utf-8").splitlines()[0])
    lines = (tmp_path / "day.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    write_day(durable, header, [json.loads(line) for line in lines[:half]])

    async def scenario() -> tuple[Sample, list[str], float]:
        broker = launch_broker(log_path=tmp_path / "broker.log")
        port = broker.port
        try:
            settings = isolated_settings(
                broker.bootstrap, tmp_path / "run", history_dir=SHIPPED_ELECTIONS, reset_check_interval=1.0
            )
            async with LocalPipeline(settings, workers=1) as pipeline:
                assert pipeline.topics is not None
                await publish(broker.bootstrap, pipeline, day, events[:half])
                await pipeline.wait_pipeline_drained(timeout=120)
                before = flag_keys(await read_topic(broker.bootstrap, pipeline.topics.flags))
                terminate(broker.process, 5.0)
                broker = launch_broker(port=port, log_path=tmp_path / "broker-2.log")
                await ensure_topics(broker.bootstrap, settings)
                await publish(broker.bootstrap, pipeline, day, events[half : half + 50])  # the day goes on
                resets = await _wait_for_reset(pipeline.worker_processes[0].metrics_url)
                await restore(settings, broker.bootstrap, days=[durable])
                await publish(broker.bootstrap, pipeline, day, events[half + 50 :])
                await pipeline.wait_pipeline_drained(timeout=180)
                pipeline.check_workers()  # the worker survived the broker's death
                got = await _settled(pipeline, want)
                after = flag_keys(await read_topic(broker.bootstrap, pipeline.topics.flags))
                return got, before + after, resets
        finally:
            broker.stop()

    got, keys, resets = asyncio.run(scenario())
    assert resets >= 1
    assert_same(got, expected_figures(want))
    assert sorted(keys) == sorted(f.key for f in want.flags)


async def _wait_for_reset(url: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with_reset = await scrape([url], ["turnout_watch_broker_resets_total"])
        value = next(iter(with_reset.get("turnout_watch_broker_resets_total", {}).values()), 0.0)
        if value >= 1:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError("the worker did not notice the empty broker")


def test_poison_records_go_to_the_dead_letter_topic_one_at_a_time(tmp_path: Path) -> None:
    """Malformed records on every input topic, between valid ones: each is dead-lettered with its reason,
    every valid record around it is processed (the figures equal offline detect of the valid ones)."""
    day, _ = day_with_corrections(tmp_path)
    want = detect_day(day, history_dir=SHIPPED_ELECTIONS)
    election = day.election.election
    release = {"election": election, "as_of": "2022-11-20T10:00:00+06:00", "published_at": "2022-11-20T10:05:00+06:00"}
    row = ["s-1", "KZ-75", "tally", 1668924000.0, 21600.0, 1668924000.0, 3000, 1200]
    count = next(e for e in day.observer_counts())
    good_count = json.loads(encode(count))
    poison: dict[str, list[bytes]] = {
        "releases": [
            b"not json", b"[1, 2, 3]", b"17", b'"text"', b"\xff\xfe\x00",
            json.dumps({**release, "turnout": [40.5]}).encode(),
            json.dumps({**release, "turnout": {"KZ-75": "40"}}).encode(),
            b'{"election": "' + election.encode() + b'", "as_of": "2022-11-20T10:00:00+06:00", '
            b'"published_at": "2022-11-20T10:05:00+06:00", "turnout": {"KZ-75": Infinity}}',
            json.dumps({**release, "turnout": {"KZ-75": 1e308 * 0 + 40.0}, "registered": {"KZ-75": 10**400}}).encode(),
            json.dumps({**release, "turnout": {"KZ-75": 40.0}, "revision": 1.5}).encode(),
            json.dumps({**release, "turnout": {"XX-99": 40.0}}).encode(),
            json.dumps({**release, "as_of": "noon", "turnout": {"KZ-75": 40.0}}).encode(),
            # a time no date library can add an hour to: accepted, it stopped every later release of the day
            json.dumps({**release, "as_of": "9999-12-31T23:00:00-12:00", "turnout": {"KZ-75": 40.0}}).encode(),
            b"[" * 50_000 + b"]" * 50_000,
        ],
        "observer_counts": [
            b"{}", b"null", json.dumps({**good_count, "registered": "3000"}).encode(),
            json.dumps({**good_count, "voted": 1e308}).encode(),
            json.dumps({**good_count, "region_code": "XX-99"}).encode(),
            json.dumps({**good_count, "observed_at": [1, 2]}).encode(),
            b'{"voted": NaN}',
            json.dumps({**good_count, "voted": -1}).encode(),  # accepted here, it broke the whole forwarded batch
            json.dumps({**good_count, "station": "\ud800"}).encode(),  # a lone surrogate: no producer can write it
        ],
        "station_counts": [
            json.dumps({"election": election, "rows": [row[:7]]}).encode(),
            json.dumps({"election": election, "rows": [[*row[:6], -1, 5]]}).encode(),
            json.dumps({"election": election, "rows": [["s-1", "XX-99", *row[2:]]]}).encode(),
            json.dumps({"election": election, "rows": {"a": row}}).encode(),
            json.dumps({"election": 7, "rows": [row]}).encode(),
            json.dumps({"election": election, "rows": [["\ud800", *row[1:]]]}).encode(),
            json.dumps({"election": election, "rows": [[*row[:3], 1e300, *row[4:]]]}).encode(),
        ],
    }  # fmt: skip

    async def scenario() -> tuple[Sample, list[Any], list[str]]:
        broker = launch_broker(log_path=tmp_path / "broker.log")
        try:
            settings = isolated_settings(broker.bootstrap, tmp_path / "run", history_dir=SHIPPED_ELECTIONS)
            async with LocalPipeline(settings, workers=1) as pipeline:
                topics = pipeline.topics
                assert topics is not None
                names = {"releases": topics.releases, "observer_counts": topics.observer_counts,
                         "station_counts": topics.station_counts}  # fmt: skip
                producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
                await producer.start()
                events = list(day.events)
                step = max(1, len(events) // 30)
                bad = [(stream, value) for stream, values in poison.items() for value in values]
                try:
                    publisher, stats = ReplayPublisher(producer, topics), ReplayStats()
                    for i, start in enumerate(range(0, len(events), step)):
                        pending = []
                        for event in events[start : start + step]:
                            pending.extend(await publisher.publish_event(day, event, stats))
                        if i < len(bad):  # a bad record right among the good ones, in the same batch
                            stream, value = bad[i]
                            pending.append(await producer.send(names[stream], value, key=election.encode()))
                        await asyncio.gather(*pending)
                    for stream, value in bad[len(range(0, len(events), step)) :]:
                        await producer.send_and_wait(names[stream], value, key=election.encode())
                finally:
                    await producer.stop()
                await pipeline.wait_pipeline_drained(timeout=180)
                got = await _settled(pipeline, want)
                letters = [json.loads(r.value) for r in await read_topic(broker.bootstrap, topics.dead_letter)]
                keys = flag_keys(await read_topic(broker.bootstrap, topics.flags))
                pipeline.check_workers()
                return got, letters, keys
        finally:
            broker.stop()

    got, letters, keys = asyncio.run(scenario())
    assert_same(got, expected_figures(want))
    assert sorted(keys) == sorted(f.key for f in want.flags)
    sent = Counter(stream for stream, values in poison.items() for _ in values)
    topic_of = {"releases": "releases", "observer_counts": "observer-counts", "station_counts": "station-counts"}
    for stream, n in sent.items():
        mine = [letter for letter in letters if letter["topic"].endswith(topic_of[stream])]
        assert len(mine) == n, (stream, [letter["reason"] for letter in mine])
        assert all(letter["reason"] and "internal error" not in letter["reason"] for letter in mine)
