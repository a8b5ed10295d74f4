"""`turnout-watch replay`: a recorded day through the whole pipeline, flags printed as they happen."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from ingest.archive import is_archive, load_archive
from ingest.day_publisher import ReplayPublisher, ReplayStats
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import read_ends
from turnout_watch.services.pipeline import LocalPipeline

SEVERITY_MARK = {"critical": "CRITICAL", "warning": "warning ", "info": "info    "}


def format_flag(flag: dict[str, Any], tz: Any = None) -> str:
    """One readable line: local time, region, severity, detector, message."""
    as_of = datetime.fromisoformat(flag["as_of"])
    if tz is not None:
        as_of = as_of.astimezone(tz)
    where = f"{flag['region_code']:<6} {flag['region'][:24]:<24}"
    return (
        f"{as_of:%H:%M}  {where} {SEVERITY_MARK.get(flag['severity'], flag['severity'])} "
        f"{flag['detector']:<21} {flag['message']}"
    )


@dataclass
class ReplayOutcome:
    stats: ReplayStats
    flags: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    publish_seconds: float = 0.0
    drain_seconds: float = 0.0
    metrics_urls: list[str] = field(default_factory=list)


class FlagCollector:
    """Reads the flags topic from the offsets it had before the replay, so old runs do not leak in."""

    def __init__(self, bootstrap: str, topic: str, election: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.topic, self.election, self.bootstrap = topic, election, bootstrap
        self.flags: list[dict[str, Any]] = []
        self.on_flag: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in sorted(await self._partitions())]
        self.consumer.assign(partitions)
        for tp, offset in (await read_ends(self.bootstrap, partitions)).items():  # tansu's end_offsets is low
            self.consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._run())

    async def _partitions(self) -> set[int]:
        await self.consumer.topics()
        return self.consumer.partitions_for_topic(self.topic) or set()

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    flag = json.loads(record.value)
                    if flag.get("election") == self.election:
                        self.flags.append(flag)
                        if self.on_flag:
                            self.on_flag(flag)

    async def drain(self) -> None:
        """Return once everything on the topic now has been read."""
        partitions = list(self.consumer.assignment())
        ends = await read_ends(self.bootstrap, partitions)
        for tp, end in ends.items():
            while await self.consumer.position(tp) < end:
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


async def run_replay(
    day_path: Path | str,
    settings: Settings,
    *,
    speed: float | None,
    workers: int = 1,
    out: TextIO | None = None,
    progress: bool = True,
    hold: bool = False,
    drain_timeout: float = 90.0,
    before_stop: Callable[[LocalPipeline, ReplayOutcome], Awaitable[None]] | None = None,
) -> ReplayOutcome:
    """Replay a day; `before_stop` runs while the pipeline is still up (tests scrape /metrics there)."""
    started = time.monotonic()
    day: DayFile = load_archive(day_path) if is_archive(day_path) else load_day(day_path)
    tz = day.election.tz
    outcome = ReplayOutcome(ReplayStats())
    events = sorted(day.events, key=lambda e: e.event_time)
    first, last = (events[0].event_time, events[-1].event_time) if events else (None, None)
    span = int((last - first).total_seconds() / 60) if first and last else 0

    def say(line: str) -> None:
        if out is not None:
            tqdm.write(line, file=out)

    async with LocalPipeline(settings, workers=workers) as pipeline:
        assert pipeline.topics is not None
        outcome.metrics_urls = [w.metrics_url for w in pipeline.worker_processes]
        where = pipeline.bootstrap + (" (embedded tansu)" if pipeline.broker else "")
        served = ", ".join(outcome.metrics_urls) or "served by the running workers"
        say(f"replaying {day.election.election} ({len(events)} events) on {where}; metrics: {served}")
        collector = FlagCollector(pipeline.bootstrap, pipeline.topics.flags, day.election.election)
        collector.on_flag = lambda flag: say(format_flag(flag, tz))
        await collector.start()
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        bar = tqdm(
            total=span,
            unit="min",
            desc="day",
            disable=not progress or out is None,
            file=out,
            bar_format="{desc} {bar} {n_fmt}/{total_fmt} day-min [{elapsed}]",
            leave=False,
        )
        try:

            def on_progress(when: datetime) -> None:
                assert first is not None
                bar.set_description(f"{when.astimezone(tz):%H:%M}")
                bar.update(int((when - first).total_seconds() / 60) - bar.n)

            publish_start = time.monotonic()
            outcome.stats = await ReplayPublisher(producer, pipeline.topics).publish_day(day, speed, on_progress)
            outcome.publish_seconds = time.monotonic() - publish_start
            outcome.drain_seconds = await pipeline.wait_pipeline_drained(timeout=drain_timeout)
            await collector.drain()
        finally:
            bar.close()
            await producer.stop()
            await collector.stop()
        outcome.flags = list(collector.flags)
        outcome.wall_seconds = time.monotonic() - started
        for problem in outcome.stats.problems:
            say(f"problem: {problem}")
        say(summary(outcome))
        if before_stop is not None:
            await before_stop(pipeline, outcome)
        if hold:
            say("replay done; pipeline still running (metrics above). Ctrl-C to stop.")
            with contextlib.suppress(asyncio.CancelledError):
                while True:
                    pipeline.check_workers()
                    await asyncio.sleep(1)
    return outcome


def summary(outcome: ReplayOutcome) -> str:
    stats = outcome.stats
    by_severity = Counter(f["severity"] for f in outcome.flags)
    by_detector = Counter(f["detector"] for f in outcome.flags)
    severities = ", ".join(f"{by_severity[s]} {s}" for s in ("critical", "warning", "info") if by_severity[s])
    detectors = ", ".join(f"{n} {d}" for d, n in sorted(by_detector.items()))
    return (
        f"done in {outcome.wall_seconds:.1f} s (publish {outcome.publish_seconds:.1f} s, pipeline caught up "
        f"{outcome.drain_seconds:.1f} s later): {stats.releases} releases ({stats.region_figures} region "
        f"figures), {stats.observer_counts} observer counts; {len(outcome.flags)} flags"
        + (f" ({severities}; {detectors})" if outcome.flags else "")
        + (f"; {len(stats.problems)} problems" if stats.problems else "")
    )
