"""`create_app(settings)`: the observer intake's aiohttp application (aiohttp-demos layout).

Resources (database, spool, producer, intake) are opened and closed in `cleanup_ctx` and held under
the typed `web.AppKey`s of `typedefs.py`; `routes.py` only wires routes; `views.py` maps domain errors
to HTTP answers. Imports run one way: app -> routes -> views -> typedefs.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from ingest.observers import store
from ingest.observers.errors import ObserverIntakeError
from ingest.observers.intake import Intake
from ingest.observers.metrics import IntakeMetrics
from ingest.observers.publisher import DurablePublisher
from ingest.observers.ratelimit import AUTH_FAILURE_BURST, AUTH_FAILURE_RATE, RateLimiter
from ingest.observers.routes import setup_routes
from ingest.observers.spool import Spool
from ingest.observers.typedefs import AUTH_LIMITER, ELECTION, INTAKE, LIMITER, METRICS, PUBLISHER, REGISTRY, SETTINGS
from ingest.observers.views import middlewares
from turnout_watch.core.dayfile import Election, read_election
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames, ensure_topics

log = logging.getLogger(__name__)

#: Allocations (net) between young collections while serving; CPython's default is 700, which a few
#: dozen requests in flight reach many times a second (~8 % of the intake's CPU went to collecting).
GC_YOUNG_THRESHOLD = 10_000
_serving: list[tuple[int, int, int]] = []  # the collector's thresholds as each app serving found them


@contextmanager
def _collector_for_serving() -> Iterator[None]:
    """The collector while an app serves: what start-up built (modules, the gazetteer's dictionaries,
    registry, tokens) lives as long as the server, so a full collection need not walk it again
    (frozen); and a request's short-lived objects are mostly gone before a young collection runs, so
    young collections can be rarer. As it was once the last app of the process stops."""
    _serving.append(gc.get_threshold())
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *_serving[0][1:])
    try:
        yield
    finally:
        first = _serving[0]
        _serving.pop()
        if not _serving:
            gc.set_threshold(*first)
            gc.unfreeze()


def load_election(path: Path) -> Election:
    """The election a day file (or a one-line election header) describes."""
    try:
        return read_election(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ObserverIntakeError(f"cannot read the election from {path}: {exc}") from exc


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.broker:
        raise ObserverIntakeError("the intake needs a broker: --broker HOST:PORT or KAFKA_BOOTSTRAP_SERVERS")
    conn = store.connect(store.db_path(settings))
    metrics = app[METRICS]
    spool = Spool(settings.observers_spool_dir or settings.data_dir / "spool", on_error=metrics.spool_errors.inc)
    try:
        await ensure_topics(settings.broker, settings, timeout=settings.observers_publish_timeout)
    except TurnoutWatchError as exc:  # start anyway: reports are spooled until the broker is back
        log.warning("%s; starting with the spool", exc)
    publisher = DurablePublisher(
        settings.broker,
        settings,
        TopicNames.from_settings(settings).observer_counts,
        spool,
        on_ack=metrics.publish_seconds.observe,
    )
    await publisher.start()
    metrics.watch(lambda: float(len(spool)), lambda: float(publisher.broker_up), lambda: float(spool.healthy))
    app[PUBLISHER] = publisher
    intake = Intake(conn, app[ELECTION], publisher, metrics)
    app[INTAKE] = intake
    try:
        await intake.recover()  # before serving: a crash's unresolved intents are checked, not re-sent blindly
        default_gazetteer()  # loaded now, not inside the first request that names a region (~0.3 s)
        with _collector_for_serving():
            yield
    finally:
        intake.close()
        await publisher.stop()
        spool.close()
        conn.close()


def create_app(settings: Settings, election: Election | None = None) -> web.Application:
    if election is None:
        if settings.observers_day is None:
            raise ObserverIntakeError("say which election the intake is for: --day DAY_FILE (or observers_day)")
        election = load_election(settings.observers_day)
    app = web.Application(client_max_size=settings.observers_max_body, middlewares=middlewares())
    app[SETTINGS] = settings
    app[ELECTION] = election
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[METRICS] = IntakeMetrics(registry)
    app[LIMITER] = RateLimiter(settings.observers_rate, settings.observers_burst)
    app[AUTH_LIMITER] = RateLimiter(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST)
    app.cleanup_ctx.append(_resources)
    setup_routes(app)
    return app
