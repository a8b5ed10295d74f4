"""How long after it is published a release is a flag on the flags topic and a changed metric, and how
long an observer count takes to move its region's metric — one record at a time into an idle pipeline.

One broker, one worker. Each sample publishes one record (acks=all), then waits until
* a release: a new flag is on the flags topic (each sample's release puts one region out of range) and
  the worker's `/metrics` shows the release's "as of" for the national figure;
* an observer count: `turnout_watch_region_last_observer_count_timestamp_seconds` of its region moved
  (the count went through both hops: re-keyed by election, then the election's agent).
The reference is in the same loop: publish -> broker acknowledgement of the same record. Samples are
spaced by a random idle pause, so a record lands at a random point of the worker's fetch wait; releases
and counts alternate. `--repeat` rounds; each round's p50/p99 are printed with their median and spread.
`/metrics` is polled every 10 ms and the flags topic fetched with a 5 ms wait, so a figure is up to
~10 ms late. Reproduce:

    .venv/bin/python bench/latency.py --samples 60 --repeat 3

Runs against an older checkout too (PYTHONPATH=<checkout>; the fetch wait setting is then Faust's 1.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from harness import print_report, report, sample, wait_until

from turnout_watch.core.settings import load_settings
from turnout_watch.services.pipeline import LocalPipeline

CODES = [f"KZ-{n}" for n in (10, 11, 15, 19, 23, 27, 31, 33, 35, 39, 43, 47, 55, 59, 61, 62, 63, 71, 75, 79)]
TZ = timezone(timedelta(hours=5))
START = datetime(2024, 3, 17, 8, tzinfo=TZ)
ELECTION = "latency"


def release(i: int) -> dict[str, Any]:
    as_of = START + timedelta(minutes=i)
    turnout: dict[str, float] = {c: round(10.0 + i * 0.01, 2) for c in CODES}
    turnout[CODES[i % len(CODES)]] = 101.0 + i  # out of range: a new flag every release
    turnout["KZ"] = 10.0
    return {
        "type": "cec_release",
        "election": ELECTION,
        "as_of": as_of.isoformat(),
        "published_at": (as_of + timedelta(seconds=30)).isoformat(),
        "turnout": turnout,
    }


def count(i: int) -> dict[str, Any]:
    observed = START + timedelta(minutes=50, milliseconds=100 * i)  # in the window before 09:00
    return {
        "type": "observer_count",
        "election": ELECTION,
        "station": f"st-{i:05d}",
        "region": "KZ-10",
        "observed_at": observed.isoformat(),
        "received_at": (observed + timedelta(minutes=1)).isoformat(),
        "registered": 1500,
        "voted": 300,
        "source": "tally",
        "report_id": f"lat-{i}",
        "region_code": "KZ-10",
    }


class FlagWatch:
    """Reads the flags topic as it grows (5 ms fetch wait: tansu holds a fetch for all of it)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5)
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.seen = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_beginning(*self.tps)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=5)
            self.seen += sum(len(records) for records in batch.values())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> dict[str, object]:
    settings = load_settings(
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        metrics_port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="tw-bench-")),
        history_dir=Path(tempfile.mkdtemp(prefix="tw-no-history-")),
    )
    rng = random.Random(5)
    runs: dict[str, list[float]] = {
        k: [] for k in ("release_p50_ms", "release_p99_ms", "count_p50_ms", "count_p99_ms", "ack_p50_ms", "ack_p99_ms")
    }
    async with LocalPipeline(settings, workers=1) as pipeline:
        topics = pipeline.topics
        assert topics is not None
        url = pipeline.worker_processes[0].metrics_url
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        flags = FlagWatch(pipeline.bootstrap, topics.flags, settings.partitions)
        await flags.start()
        as_of = "turnout_watch_region_as_of_timestamp_seconds"
        last_count = "turnout_watch_region_last_observer_count_timestamp_seconds"
        try:
            i = 0
            # warm-up: the worker joined its group and took a release and a count
            await producer.send_and_wait(topics.releases, json.dumps(release(i)).encode(), key=ELECTION.encode())
            await producer.send_and_wait(topics.observer_counts, json.dumps(count(i)).encode(), key=b"st-00000")
            await wait_until(lambda: sample(url, last_count, election=ELECTION, region="KZ-10") is not None, 120, 0.1)
            await wait_until(lambda: flags.seen > 0, 60, 0.05)
            for _ in range(args.repeat):
                rel: list[float] = []
                cnt: list[float] = []
                ack: list[float] = []
                for _ in range(args.samples):
                    i += 1
                    await asyncio.sleep(rng.uniform(0.2, 0.6))  # idle: the worker sits in a fetch wait
                    before = flags.seen
                    want = (START + timedelta(minutes=i)).timestamp()
                    t0 = time.perf_counter()
                    value = json.dumps(release(i)).encode()
                    await producer.send_and_wait(topics.releases, value, key=ELECTION.encode())
                    ack.append(time.perf_counter() - t0)
                    await wait_until(lambda: flags.seen > before, 30, 0.002)  # noqa: B023
                    await wait_until(lambda: sample(url, as_of, election=ELECTION, region="KZ") == want, 30, 0.01)  # noqa: B023
                    rel.append(time.perf_counter() - t0)
                    await asyncio.sleep(rng.uniform(0.2, 0.6))
                    seen = sample(url, last_count, election=ELECTION, region="KZ-10")
                    t0 = time.perf_counter()
                    key = f"st-{i:05d}".encode()
                    await producer.send_and_wait(topics.observer_counts, json.dumps(count(i)).encode(), key=key)
                    ack.append(time.perf_counter() - t0)
                    moved = lambda: sample(url, last_count, election=ELECTION, region="KZ-10") != seen  # noqa: B023, E731
                    await wait_until(moved, 30, 0.01)
                    cnt.append(time.perf_counter() - t0)
                for name, values in (("release", rel), ("count", cnt), ("ack", ack)):
                    runs[f"{name}_p50_ms"].append(1000 * statistics.median(values))
                    runs[f"{name}_p99_ms"].append(1000 * percentile(values, 0.99))
        finally:
            await flags.stop()
            await producer.stop()
    return report(f"idle latency, {args.samples} releases and {args.samples} counts per round", runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    print_report(asyncio.run(main(parser.parse_args())))
