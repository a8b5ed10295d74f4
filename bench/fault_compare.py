"""Issue 12's first fault, measured: SIGKILL the worker late in the day, compare its /metrics with offline detect.

The day is tests/streams/test_faults.py's: the real 2022 day with 300 simulated stations' counts, some
corrected (same observation, later report) and some sent twice. The worker is killed a moment after
a burst of the 20:00 counts and a new one takes over; the rest of the day follows. Prints, per
observer family, how many regions differ from `turnout-watch detect` of the same events.

This script, the day and the reference always come from this checkout; the workers are subprocesses
and run whatever checkout PYTHONPATH names:

    .venv/bin/python bench/fault_compare.py                                   # this checkout
    git worktree add /tmp/old c13c70e && PYTHONPATH=/tmp/old \\
        .venv/bin/python bench/fault_compare.py --second-hop observer-aggregates --one-group  # before issue 12
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from aiokafka import AIOKafkaProducer  # noqa: E402
from drain import wait_drained  # noqa: E402

from ingest.day_publisher import ReplayPublisher, ReplayStats  # noqa: E402
from tests.streams.test_faults import FAMILIES, day_with_corrections, expected_figures, scrape  # noqa: E402
from turnout_watch.core.settings import SHIPPED_ELECTIONS, load_settings  # noqa: E402
from turnout_watch.core.topics import consumer_groups  # noqa: E402
from turnout_watch.services.detect import detect_day  # noqa: E402
from turnout_watch.services.pipeline import LocalPipeline  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tw-faults-"))
    day, _ = day_with_corrections(tmp)
    want = expected_figures(detect_day(day, history_dir=SHIPPED_ELECTIONS))
    settings = load_settings(
        topic_prefix=f"f{uuid.uuid4().hex[:6]}.", metrics_port=0, data_dir=tmp / "run", history_dir=SHIPPED_ELECTIONS
    )
    async with LocalPipeline(settings, workers=1) as pipeline:
        topics = pipeline.topics
        assert topics is not None
        hops = [topics.releases, topics.observer_counts, settings.topic_prefix + args.second_hop]
        groups: str | dict[str, str] = settings.app_id if args.one_group else consumer_groups(settings)
        if isinstance(groups, dict):
            groups.setdefault(hops[-1], settings.app_id)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
        await producer.start()
        publisher, stats = ReplayPublisher(producer, topics), ReplayStats()
        events = list(day.events)
        split = int(len(events) * args.kill_at)

        async def send(chunk: list[object]) -> None:
            futures = [f for event in chunk for f in await publisher.publish_event(day, event, stats)]  # type: ignore[arg-type]
            await asyncio.gather(*futures)

        await send(events[: split - 200])
        await wait_drained(pipeline.bootstrap, groups, hops, settings.partitions)
        await send(events[split - 200 : split])
        await asyncio.sleep(0.25)  # mid-batch or between publishing and committing
        pipeline.kill_worker(0)
        pipeline.worker_processes.append(pipeline.spawn_worker(1))
        await send(events[split:])
        await producer.stop()
        await wait_drained(pipeline.bootstrap, groups, hops, settings.partitions)
        await asyncio.sleep(2)
        got = await scrape([w.metrics_url for w in pipeline.worker_processes], FAMILIES)
    for family in FAMILIES[1:4]:
        expected, served = want.get(family, {}), got.get(family, {})
        diffs = [served.get(k, math.nan) - v for k, v in expected.items()]
        ratios = [served.get(k, math.nan) / v for k, v in expected.items() if v]
        wrong = sum(1 for d in diffs if not math.isclose(d, 0.0, abs_tol=1e-9))
        print(
            f"{family}: {wrong}/{len(expected)} regions differ from detect; "
            f"difference {min(diffs):+.3f}..{max(diffs):+.3f}; ratio {min(ratios):.2f}..{max(ratios):.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kill-at", type=float, default=0.925, help="share of the day's events before the kill")
    parser.add_argument("--second-hop", default="station-counts", help="the topic the counts hop writes")
    parser.add_argument(
        "--one-group", action="store_true", help="workers of a checkout whose counts hop commits in the app's group"
    )
    asyncio.run(main(parser.parse_args()))
