"""How many observer counts per second one Faust worker takes through both hops, against a raw consumer.

Each repeat publishes N counts of S stations for one election (keyed by station, as the intake does; a
tenth of them corrections of an earlier count) onto fresh topics of one broker, then starts one worker
on them and times it until it processed exactly N counts and its group committed both hops — the
counts topic and the per-election topic the counts hop writes and the election's agent reads — at
their true ends (bench/harness.py). Each worker run is followed by the reference on the same records:
a plain aiokafka consumer doing `json.loads` on each. Interleaved, `--repeat` times; medians, spread
and the worker/raw ratio are printed, and the worker's resident memory after the N counts (and its
peak; the default is a 10,000-station day). Also checked: the second hop's records hold exactly N counts.
Runs against whichever turnout-watch is on the path (PYTHONPATH=<old checkout> for a before). Reproduce:

    .venv/bin/python bench/observer_throughput.py --counts 200000 --stations 10000 --repeat 3

Prints a table on stderr and one JSON line on stdout; `--profile DIR` samples the worker with py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from harness import print_report, raw_consume, report, worker_run

from turnout_watch.services.broker import launch_broker

CODES = [f"KZ-{n}" for n in (10, 11, 15, 19, 23, 27, 31, 33, 35, 39, 43, 47, 55, 59, 61, 62, 63, 71, 75, 79)]
TZ = timezone(timedelta(hours=5))


def counts(n: int, stations: int, election: str = "bench-observers", seed: int = 3) -> list[tuple[bytes, bytes]]:
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
            "election": election,
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


async def rows_on(bootstrap: str, topic: str, partitions: int) -> int:
    """Counts held by the second hop's records (each a StationCounts of some rows)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        rows = 0
        while True:
            batch = await consumer.getmany(timeout_ms=1500, max_records=10_000)
            if not batch:
                return rows
            for records in batch.values():
                rows += sum(len(json.loads(r.value)["rows"]) for r in records)
    finally:
        await consumer.stop()


async def main(args: argparse.Namespace) -> dict[str, object]:
    records = counts(args.counts, args.stations)
    data = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    broker = await asyncio.to_thread(launch_broker, log_path=data / "broker.log")
    runs: dict[str, list[float]] = {
        "worker_counts_per_s": [],
        "raw_counts_per_s": [],
        "first_hop_counts_per_s": [],
        "worker_rss_mb_after": [],  # once it took the N counts of S stations (a 10,000-station day by default)
        "worker_peak_rss_mb": [],
    }
    try:
        for i in range(args.repeat):
            profile = args.profile / f"observers-{i}.txt" if args.profile else None
            run = await worker_run(
                records,
                bootstrap=broker.bootstrap,
                topic="observer_counts",
                stream="observer_counts",
                then_drained=["station_counts"],
                profile=profile,
            )
            topics, settings = run["topics"], run["settings"]
            second = getattr(topics, "station_counts", None)
            if second is not None:
                rows = await rows_on(broker.bootstrap, second, settings.partitions)
                assert rows == len(records), f"the second hop holds {rows} counts, not {len(records)}"
            raw = await raw_consume(broker.bootstrap, topics.observer_counts, settings.partitions, len(records))
            runs["worker_counts_per_s"].append(run["rate"])
            runs["first_hop_counts_per_s"].append(run["first_hop_rate"])
            runs["raw_counts_per_s"].append(raw)
            runs["worker_rss_mb_after"].append(run["rss_mb"])
            runs["worker_peak_rss_mb"].append(run["peak_rss_mb"])
    finally:
        broker.stop()
    return report(
        f"observer counts through one worker, both hops ({len(records)} counts)",
        runs,
        ratio=("worker_counts_per_s", "raw_counts_per_s"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, default=200_000)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy raw stacks of each worker run here")
    print_report(asyncio.run(main(parser.parse_args())))
