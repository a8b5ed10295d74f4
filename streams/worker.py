"""A Faust worker process: the agents, the counts hop (streams/counts_hop.py) and the `/metrics`
endpoint, on one event loop."""

from __future__ import annotations

import gc
import logging
from typing import Any

import faust
from aiohttp import web
from mode import Service
from prometheus_client import CollectorRegistry

from streams.agents import AgentState, register_agents
from streams.annotations import Annotator
from streams.app import create_app
from streams.counts_hop import CountsHop
from streams.metrics import PipelineMetrics
from turnout_watch.core.logs import setup_logging
from turnout_watch.core.metrics_endpoint import metrics_app
from turnout_watch.core.normalize import region_names
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames

log = logging.getLogger(__name__)


class MetricsServer(Service):
    """Serves the worker's registry over HTTP for Prometheus to scrape."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry, self.host, self.port = registry, host, port
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = web.AppRunner(metrics_app(self.registry), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("metrics at http://%s:%d/metrics", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class AnnotatorService(Service):
    """Posts Grafana annotations in the background (streams/annotations.py) for the worker's lifetime."""

    def __init__(self, annotator: Annotator, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.annotator = annotator

    async def on_start(self) -> None:
        await self.annotator.start()

    async def on_stop(self) -> None:
        await self.annotator.stop(drain=1.0)


def build_worker(settings: Settings, bootstrap: str) -> tuple[faust.App, faust.Worker]:
    app = create_app(settings, bootstrap)
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    names = region_names()
    metrics.name_regions(names)
    annotator = None
    if settings.grafana_url:
        token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
        annotator = Annotator(
            settings.grafana_url,
            token,
            metrics.annotations,
            queue_size=settings.grafana_queue,
            timeout=settings.grafana_timeout,
        )
    state = AgentState(app, TopicNames.from_settings(settings), settings, metrics, names, bootstrap, annotator)
    register_agents(state)
    server = MetricsServer(registry, settings.metrics_host, settings.metrics_port)
    services: list[Service] = [server, CountsHop(state)]  # the counts hop: aiokafka's batched consumer
    if annotator is not None:
        services.append(AnnotatorService(annotator))
    # override_logging=False: mode's own setup leaves the root logger at NOTSET (every library's debug
    # records get built, a third of the agent's time) and adds a terminal spinner. We configure it.
    worker = faust.Worker(app, *services, quiet=True, override_logging=False)
    return app, worker


def run_worker(settings: Settings, bootstrap: str) -> None:
    """Run until SIGTERM/SIGINT (Faust's Worker owns the loop and the signal handlers)."""
    setup_logging(level=settings.worker_log_level, worker=True)
    _app, worker = build_worker(settings, bootstrap)
    tune_gc()
    worker.execute_from_commandline()


#: Allocations between young collections, and young (middle) collections between older ones. CPython's
#: default (700, 10, 10) makes a worker collect every few hundred counts and walk its whole heap often:
#: the trackers hold every station's counts, so a day's heap grows by the count. Measured on 100k counts
#: of 10,000 stations: ~40 -> ~15 us of CPU per count through both hops (bench/observer_throughput.py).
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, gazetteer, the app: never garbage, so never walked again)
    and collect less often. Most of a worker's garbage has no cycles and goes by reference counting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
