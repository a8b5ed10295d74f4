"""How many observer counts per second one Faust worker takes through both hops, committed.

Starts the embedded broker and one worker, warms it up with one count, then publishes N counts of S
stations (keyed by station, as the intake does; a tenth of them corrections of an earlier count) for
one election, and times until the worker group committed the counts topic and the second hop's topic
(the per-election topic the counts agent writes and the election's agent reads), by true partition
ends (bench/drain.py). Runs against whichever turnout-watch is on the path, so the same script gives a
before/after (PYTHONPATH=<old checkout>). Reproduce:

    .venv/bin/python bench/observer_throughput.py --counts 100000 --stations 10000

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer
from drain import wait_drained

from turnout_watch.core.settings import load_settings
from turnout_watch.services.pipeline import LocalPipeline

CODES = [f"KZ-{n}" for n in (10, 11, 15, 19, 23, 27, 31, 33, 35, 39, 43, 47, 55, 59, 61, 62, 63, 71, 75, 79)]
TZ = timezone(timedelta(hours=5))


def counts(n: int, stations: int, seed: int = 3) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    start = datetime(2024, 10, 6, 8, tzinfo=TZ)
    out = []
    for i in range(n):
        s = rng.randrange(stations)
        hour = start + timedelta(hours=1 + (i * 12) // n)
        observed = hour - timedelta(minutes=rng.randrange(1, 25))
        registered = 1000 + (s * 37) % 2000
        voted = int(registered * min(0.95, 0.05 + 0.06 * ((i * 12) // n) + rng.uniform(-0.02, 0.02)))
        record = {
            "type": "observer_count",
            "election": "bench-observers",
            "station": f"st-{s:05d}",
            "region": CODES[s % len(CODES)],
            "observed_at": observed.isoformat(),
            "received_at": (observed + timedelta(minutes=3)).isoformat(),
            "registered": registered,
            "voted": voted,
            "source": "tally" if rng.random() < 0.7 else "commission",
            "report_id": f"r{i}",
            "region_code": CODES[s % len(CODES)],
        }
        out.append((record["station"].encode(), json.dumps(record).encode()))
    return out


async def main(args: argparse.Namespace) -> dict[str, float | int]:
    settings = load_settings(
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        metrics_port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="tw-bench-")),
    )
    records = counts(args.counts, args.stations)
    pipeline = LocalPipeline(settings, workers=1)
    await pipeline.start()
    topics = pipeline.topics
    assert topics is not None
    second_hop = getattr(topics, "station_counts", None) or getattr(topics, "observer_aggregates")  # noqa: B009
    both = [topics.observer_counts, second_hop]
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20
        )
        await producer.start()
        t0 = time.perf_counter()
        await producer.send_and_wait(topics.observer_counts, records[0][1], key=records[0][0])
        await wait_drained(pipeline.bootstrap, settings.app_id, both, settings.partitions, timeout=120)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        futures = [await producer.send(topics.observer_counts, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        publish = time.perf_counter() - t1
        await wait_drained(pipeline.bootstrap, settings.app_id, [topics.observer_counts], settings.partitions)
        first = time.perf_counter() - t1
        await wait_drained(pipeline.bootstrap, settings.app_id, both, settings.partitions)
        total = time.perf_counter() - t1
        await producer.stop()
    finally:
        pipeline.stop()
    return {
        "counts": len(records),
        "worker_startup_seconds": round(startup, 2),
        "publish_seconds": round(publish, 2),
        "seconds_until_first_hop_committed": round(first, 2),
        "seconds_until_both_hops_committed": round(total, 2),
        "counts_per_second": round(len(records) / total, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, default=100_000)
    parser.add_argument("--stations", type=int, default=10_000)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
