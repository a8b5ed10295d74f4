"""Wall time of a replay with two Faust workers against one, on the same broker and the same day.

Two workloads, each replayed with 1 and with 2 workers (`--repeat` times, alternating):

* `kz-2022`: the shipped 20 Nov 2022 day through `run_replay --speed max` (what `turnout-watch replay
  DAY --workers N --speed max` does): broker start excluded (one embedded broker for all runs), worker
  start-up, rebalance, publish and drain included. One election = one partition: a second worker can
  only cost (another member to rebalance), never help.
* `synthetic`: `--elections` synthetic election days (7 releases of 21 figures each) published at max
  speed into one pipeline; spread over the 4 partitions, they can use both workers. Timed from the first
  record published until the group committed everything (workers already consuming, start-up apart).

Reproduce (2 cores shared, so take the medians):

    .venv/bin/python bench/scale_out.py --repeat 3 --elections 300

Prints one JSON line per run and a summary line with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from ingest.day_publisher import ReplayPublisher, ReplayStats
from turnout_watch.core.dayfile import DayFile, load_day, write_day
from turnout_watch.core.settings import SHIPPED_ELECTIONS, Settings, load_settings
from turnout_watch.services.broker import EmbeddedBroker, launch_broker
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.services.replay import run_replay
from turnout_watch.sim.synth import make_day

WARM = 8  # warm-up elections (their keys spread over the 4 partitions)
DAY_2022 = SHIPPED_ELECTIONS / "kz-2022-11-20-presidential.jsonl"


def settings_for(broker: EmbeddedBroker, data_dir: Path) -> Settings:
    unique = uuid.uuid4().hex[:8]
    return load_settings(
        broker=broker.bootstrap, topic_prefix=f"b{unique}.", app_id=f"bench-{unique}", metrics_port=0, data_dir=data_dir
    )


async def kz_2022(broker: EmbeddedBroker, workers: int, data_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    outcome = await run_replay(DAY_2022, settings_for(broker, data_dir), speed=None, workers=workers, progress=False)
    return {
        "workload": "kz-2022",
        "workers": workers,
        "wall_s": round(time.monotonic() - started, 2),
        "publish_s": round(outcome.publish_seconds, 2),
        "drain_s": round(outcome.drain_seconds, 2),
        "flags": len(outcome.flags),
    }


async def synthetic(broker: EmbeddedBroker, workers: int, days: list[DayFile], data_dir: Path) -> dict[str, Any]:
    settings = settings_for(broker, data_dir)
    async with LocalPipeline(settings, workers=workers) as pipeline:
        assert pipeline.topics is not None
        topics = pipeline.topics
        # Start-up apart: a first release of WARM elections, until every worker serves some of them
        # (so the group has its final members and the rebalance is over before the clock starts).
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            publisher = ReplayPublisher(producer, topics)
            for day in days[:WARM]:
                await asyncio.gather(*await publisher.publish_event(day, day.releases()[0], ReplayStats()))
            await pipeline.wait_drained([topics.releases], timeout=120)
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 120
                while True:
                    pipeline.check_workers()
                    served = []
                    for worker in pipeline.worker_processes:
                        async with session.get(worker.metrics_url) as response:
                            served.append("turnout_watch_region_turnout_percent{" in await response.text())
                    if all(served):
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"not every worker got a partition: {served}")
                    await asyncio.sleep(0.2)
            started = time.monotonic()
            stats = ReplayStats()
            sends = []
            for day in days[WARM:]:
                for event in day.events:
                    sends.extend(await publisher.publish_event(day, event, stats))
            await asyncio.gather(*sends)
            published = time.monotonic() - started
            await pipeline.wait_drained([topics.releases], timeout=300, poll=0.1)
            elapsed = time.monotonic() - started
        finally:
            await producer.stop()
    return {
        "workload": "synthetic",
        "workers": workers,
        "elections": len(days) - WARM,
        "releases": stats.releases,
        "wall_s": round(elapsed, 2),
        "publish_s": round(published, 2),
        "releases_per_s": round(stats.releases / elapsed, 1),
    }


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-scale-"))
    days = []
    for seed in range(args.elections + WARM):
        header, events = make_day(seed)
        path = tmp / "days" / f"{header['election']}.jsonl"
        write_day(path, header, events)
        days.append(load_day(path))
    broker = await asyncio.to_thread(launch_broker, log_path=tmp / "broker.log")
    results: list[dict[str, Any]] = []
    try:
        for i in range(args.repeat):
            for workers in (1, 2):
                for run in (
                    kz_2022(broker, workers, tmp / f"kz-{i}-{workers}"),
                    synthetic(broker, workers, days, tmp / f"syn-{i}-{workers}"),
                ):
                    result = await run
                    print(json.dumps(result), flush=True)
                    results.append(result)
    finally:
        broker.stop()
    summary: dict[str, Any] = {"summary": "median wall seconds", "repeat": args.repeat}
    for workload in ("kz-2022", "synthetic"):
        for workers in (1, 2):
            walls = [r["wall_s"] for r in results if r["workload"] == workload and r["workers"] == workers]
            summary[f"{workload}_{workers}w"] = statistics.median(walls)
    print(json.dumps(summary))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--elections", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
