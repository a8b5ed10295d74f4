"""Scraper speed: parse throughput, and release lag (publication on the site -> broker acknowledgement).

Parse: every release of the two shipped days, rendered by the simulator in ru/kk/en and several styles
as whole pages, read with the cec-kz selectors (`read_release_page`); first pass cold, then warm.

Lag: the simulator at real time (speed 1) publishing a synthetic day of R releases G seconds apart
(the 2022 figures, nudged so each release is new); the scraper with the shipped cec-kz polling
(3 s fast interval around each expected release) publishing to the embedded tansu broker with
acks=all. The lag is dominated by where in the poll interval a release appears. Reproduce:

    .venv/bin/python bench/scraper.py --releases 20 --gap 15

Prints one JSON line. Runs about releases x gap seconds, mostly idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from ingest.clock import ManualClock, ScaledClock
from ingest.metrics import ScraperMetrics
from ingest.pages import read_release_page
from ingest.poller import Scraper
from ingest.sink import KafkaSink
from ingest.sources import load_source
from turnout_watch.core.dayfile import DayFile, load_day, parse_event
from turnout_watch.core.settings import load_settings
from turnout_watch.core.topics import ensure_topics
from turnout_watch.services.broker import free_port, launch_broker
from turnout_watch.sim.cec_site import CecSimulator

ROOT = Path(__file__).resolve().parents[1]
DAYS = [
    ROOT / "data" / "elections" / name for name in ("kz-2022-11-20-presidential.jsonl", "kz-2023-03-19-majilis.jsonl")
]


def parse_throughput(seeds: int) -> dict[str, float]:
    source = load_source("cec-kz")
    pages = []
    for path in DAYS:
        day = load_day(path)
        for seed in range(seeds):
            sim = CecSimulator(day, ManualClock(max(r.published_at for r in day.releases())), seed=seed)
            for item in sim.visible():
                if item.as_of is not None:
                    pages += [
                        (sim.release_page(s, item, False).encode(), day.election.date) for s in ("rus", "kaz", "eng")
                    ]
    out = {"pages": len(pages), "page_bytes_avg": sum(len(p) for p, _ in pages) / len(pages)}
    for label in ("cold", "warm"):
        started = time.perf_counter()
        for body, on in pages:
            read_release_page(body, source, on)
        out[f"releases_per_s_{label}"] = round(len(pages) / (time.perf_counter() - started), 1)
    return out


def synthetic_day(releases: int, gap: float) -> DayFile:
    base = load_day(DAYS[0])
    figures = [r.turnout_pct for r in base.releases()]
    start = base.releases()[0].as_of + timedelta(seconds=30)
    events = []
    for i in range(releases):
        as_of = start + timedelta(seconds=gap * i)
        pct = {name: round(value + 0.01 * i, 2) for name, value in figures[i % len(figures)].items()}
        events.append(
            parse_event(
                {
                    "type": "cec_release",
                    "election": base.election.election,
                    "as_of": as_of.isoformat(),
                    "published_at": (as_of + timedelta(seconds=gap / 3)).isoformat(),
                    "turnout_pct": pct,
                }
            )
        )
    return DayFile(base.election, tuple(events))


async def release_lag(releases: int, gap: float) -> dict[str, Any]:
    day = synthetic_day(releases, gap)
    broker = await asyncio.to_thread(launch_broker, log_path=Path(tempfile.mkdtemp()) / "tansu.log")
    unique = uuid.uuid4().hex[:8]
    settings = load_settings(broker=broker.bootstrap, topic_prefix=f"b{unique}.", app_id=f"b{unique}")
    runner = None
    try:
        topics = await ensure_topics(broker.bootstrap, settings)
        first = min(r.published_at for r in day.releases())
        clock = ScaledClock(first - timedelta(seconds=5), 1.0)
        sim = CecSimulator(day, clock)
        runner = web.AppRunner(sim.app(), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        schedule = tuple(r.as_of.timetz().replace(tzinfo=None) for r in day.releases())
        source = load_source("cec-kz").with_overrides(f"http://127.0.0.1:{port}", schedule=schedule)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        sink = KafkaSink(producer, topics, day.election)
        lags: list[float] = []

        async def timed(event: dict[str, Any]) -> None:
            await sink(event)
            lags.append(time.time() - clock.wall(datetime_of(event["published_at"])))

        scraper = Scraper(source, dict(day.election.raw), timed, ScraperMetrics(CollectorRegistry(), "cec-kz"), clock)
        stop = asyncio.Event()
        async with scraper:
            task = asyncio.create_task(scraper.run(stop))
            deadline = time.monotonic() + releases * gap + 60
            while len(lags) < releases and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            stop.set()
            await task
        await producer.stop()
        lags.sort()
        return {
            "releases": releases,
            "published": len(lags),
            "fast_interval_s": source.polling.fast_interval,
            "lag_median_s": round(statistics.median(lags), 3),
            "lag_p99_s": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3),
            "lag_max_s": round(lags[-1], 3),
            "site_requests": sim.requests,
        }
    finally:
        if runner is not None:
            await runner.cleanup()
        broker.stop()


def datetime_of(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=20, help="releases in the lag run")
    parser.add_argument("--gap", type=float, default=15.0, help="seconds between releases in the lag run")
    parser.add_argument("--seeds", type=int, default=10, help="styles per release in the parse run")
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"parse": parse_throughput(args.seeds)}
    if not args.skip_lag:
        result["lag"] = asyncio.run(release_lag(args.releases, args.gap))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
