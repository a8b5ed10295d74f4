"""Grafana annotations through the real grafana-client, against a stand-in of Grafana's annotations API."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from detectors.history import load_curves
from detectors.tracker import TurnoutTracker
from streams.annotations import Annotator
from streams.metrics import PipelineMetrics
from tests.support.broker import isolated_settings
from tests.support.grafana import GrafanaStandIn, serve
from tests.support.paths import DAY_2022
from turnout_watch.core.dayfile import load_day
from turnout_watch.core.normalize import normalize_release, region_names
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.services.broker import EmbeddedBroker, free_port
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.services.replay import ReplayOutcome, run_replay

ELECTION = "kz-2022-11-20-presidential"
TOKEN = "glsa_test_token"


def outcomes(metrics: PipelineMetrics) -> dict[str, float]:
    return {
        o: metrics.registry.get_sample_value("turnout_watch_annotations_total", {"outcome": o}) or 0
        for o in ("posted", "failed", "dropped")
    }


async def annotate_day(annotator: Annotator) -> None:
    """The 2022 day as the agent sees it: each normalised release through the tracker, then annotated."""
    day = load_day(DAY_2022)
    tracker = TurnoutTracker(ELECTION, region_names(), curves=load_curves(SHIPPED_ELECTIONS, exclude=ELECTION))
    for event in day.releases():
        release = normalize_release(event, day.election.date, election=day.election).release
        assert release is not None
        annotator.release(release, tracker.process(release).flags)


async def test_each_release_and_critical_flag_is_posted_with_its_tags() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    async with serve(GrafanaStandIn(TOKEN)) as grafana:
        annotator = Annotator(grafana.url, TOKEN, metrics.annotations, dashboard_uid="watch-room")
        await annotator.start()
        await annotate_day(annotator)
        await annotator.stop(drain=10)
    assert outcomes(metrics) == {"posted": 8, "failed": 0, "dropped": 0}
    releases = [a for a in grafana.received if "cec-release" in a["tags"]]
    flags = [a for a in grafana.received if "flag" in a["tags"]]
    assert len(releases) == 7 and len(flags) == 1  # Turkistan at noon is the day's one critical flag
    noon = datetime.fromisoformat("2022-11-20T12:00:00+06:00").timestamp() * 1000
    (turkistan,) = flags
    assert turkistan["time"] == noon and turkistan["timeEnd"] is None
    assert {"region:KZ-61", "detector:cross_sectional_jump", f"election:{ELECTION}", "severity:critical"} <= set(
        turkistan["tags"]
    )
    assert "Turkistan Region" in turkistan["text"] and "robust SDs" in turkistan["text"]
    assert turkistan["dashboardUID"] == "watch-room"
    first = releases[0]
    assert first["time"] == datetime.fromisoformat("2022-11-20T10:00:00+06:00").timestamp() * 1000
    assert first["timeEnd"] > first["time"]  # from "as of" to publication
    assert f"election:{ELECTION}" in first["tags"] and "as of 10:00" in first["text"]
    assert grafana.unauthorized == 0


async def test_a_slow_grafana_fills_the_queue_and_drops_are_counted() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    async with serve(GrafanaStandIn(TOKEN, delay=30)) as grafana:
        annotator = Annotator(grafana.url, TOKEN, metrics.annotations, queue_size=2, timeout=0.3)
        await annotator.start()
        await annotate_day(annotator)  # returns although Grafana answers nothing for 30 s
        assert outcomes(metrics)["dropped"] >= 5  # 8 annotations, 2 queued, at most 1 taken already
        await annotator.stop(drain=5)  # each queued post times out after 0.3 s
    counted = outcomes(metrics)
    assert counted["posted"] == 0 and counted["failed"] + counted["dropped"] == 8


async def test_grafana_down_or_refusing_the_token_counts_failures() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    down = Annotator(f"http://127.0.0.1:{free_port()}", TOKEN, metrics.annotations, timeout=2)
    await down.start()
    await annotate_day(down)
    await down.stop(drain=10)
    assert outcomes(metrics) == {"posted": 0, "failed": 8, "dropped": 0}
    async with serve(GrafanaStandIn(TOKEN)) as grafana:
        wrong = Annotator(grafana.url, "not-the-token", metrics.annotations)
        await wrong.start()
        await annotate_day(wrong)
        await wrong.stop(drain=10)
    assert grafana.unauthorized == 8 and grafana.received == []
    assert outcomes(metrics)["failed"] == 16


@pytest.mark.integration
def test_worker_annotates_and_a_slow_grafana_does_not_hold_the_pipeline(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """A real worker with Grafana configured, Grafana taking 20 s per request and room for 2 in the queue:
    the replay still completes with every flag, and the worker counts what it dropped."""
    scraped: dict[str, str] = {}

    async def scrape(pipeline: LocalPipeline, outcome: ReplayOutcome) -> None:
        async with aiohttp.ClientSession() as session, session.get(pipeline.worker_processes[0].metrics_url) as r:
            scraped["text"] = await r.text()

    async def scenario() -> tuple[ReplayOutcome, GrafanaStandIn]:
        async with serve(GrafanaStandIn(TOKEN, delay=20)) as grafana:
            settings = isolated_settings(
                broker.bootstrap,
                tmp_path / "run",
                grafana_url=grafana.url,
                grafana_token=TOKEN,
                grafana_queue=2,
                grafana_timeout=30,
            )
            outcome = await run_replay(DAY_2022, settings, speed=None, before_stop=scrape)
            return outcome, grafana

    outcome, grafana = asyncio.run(scenario())
    assert outcome.stats.releases == 7 and len(outcome.flags) == 7  # 11 before the west was judged on its own clock
    families = {f.name: f for f in text_string_to_metric_families(scraped["text"])}
    counted: dict[str, Any] = {
        s.labels["outcome"]: s.value for s in families["turnout_watch_annotations"].samples if s.name.endswith("_total")
    }
    assert counted["dropped"] >= 5 and counted["posted"] == 0  # 8 annotations: 2 queued, at most 1 in flight
    assert grafana.arrived >= 1 and grafana.unauthorized == 0  # the token reached the worker intact, not masked
