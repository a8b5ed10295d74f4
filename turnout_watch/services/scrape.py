"""`turnout-watch scrape`: the poller wired to the broker, the archive and a /metrics endpoint.

Kept apart from `poller.py` so the poller stays testable without Kafka processes; this module only
assembles the parts and runs them until Ctrl-C (or, for demos and benchmarks, until every scheduled
release is in).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from ingest.archive import Archive
from ingest.clock import Clock
from ingest.metrics import ScraperMetrics
from ingest.poller import Scraper
from ingest.sink import KafkaSink
from ingest.sources import Source
from turnout_watch.core.dayfile import parse_election
from turnout_watch.core.metrics_endpoint import metrics_app
from turnout_watch.core.settings import Settings
from turnout_watch.services.pipeline import LocalPipeline


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(metrics_app(registry), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_scrape(
    source: Source,
    header: dict[str, Any],
    settings: Settings,
    clock: Clock,
    *,
    archive_dir: Path | None,
    metrics_port: int,
    workers: int,
    until_done: bool = False,
    say: Callable[[str], None] = print,
) -> Scraper:
    """Poll `source` for the election in `header`, publishing to the pipeline, until cancelled."""
    registry = CollectorRegistry()
    metrics = ScraperMetrics(registry, source.name)
    election = parse_election(header)
    archive = Archive(archive_dir, header, source) if archive_dir else None
    async with LocalPipeline(settings, workers=workers) as pipeline:
        assert pipeline.topics is not None
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        server = await serve_metrics(registry, settings.metrics_host, metrics_port)
        stop = asyncio.Event()
        try:
            sink = KafkaSink(producer, pipeline.topics, election)

            async def announce(event: dict[str, Any]) -> None:
                await sink(event)
                revision = f" (revision {event['revision']})" if event.get("revision") else ""
                missing = f", missing {', '.join(event['missing'])}" if event.get("missing") else ""
                say(f"published {event['as_of']}{revision}: {len(event['turnout_pct'])} figures{missing}")

            scraper = Scraper(source, header, announce, metrics, clock, archive, random.Random())
            say(
                f"scraping {source.name} at {source.base_url} for {election.election}; broker {pipeline.bootstrap}; "
                f"metrics http://{settings.metrics_host}:{metrics_port}/metrics"
                + (f"; archive {archive_dir}" if archive_dir else "")
            )
            async with scraper:
                task = asyncio.create_task(scraper.run(stop))
                while not task.done():
                    pipeline.check_workers()
                    expected = scraper.expected()
                    if until_done and expected and all(t in scraper.versions for t in expected):
                        stop.set()
                    await asyncio.sleep(0.2)
                await task
            return scraper
        finally:
            stop.set()
            await producer.stop()
            with contextlib.suppress(Exception):
                await server.cleanup()
