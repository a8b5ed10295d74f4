"""The intake's Prometheus metrics, built on a registry passed in (tests use a fresh one).

Labels stay few and bounded: `route` is one of our routes, `status` an HTTP status, `code` one of
the validation codes, `where` broker or spool.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ROUTES = ("counts", "counts_csv", "station", "form", "other")
OUTCOMES = ("accepted", "duplicate", "rejected")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "turnout_watch_intake_requests", "HTTP requests to the intake API", ("route", "status"), registry=registry
        )
        self.request_seconds = Histogram(
            "turnout_watch_intake_request_seconds",
            "Time to answer a request (a 2xx includes waiting for the broker's ack or the spool's fsync)",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.counts = Counter(
            "turnout_watch_intake_counts", "Submitted counts by outcome", ("outcome",), registry=registry
        )
        self.rejections = Counter(
            "turnout_watch_intake_rejections",
            "Problems found in submitted counts, by code",
            ("code",),
            registry=registry,
        )
        self.stored = Counter(
            "turnout_watch_intake_stored",
            "Accepted counts by where they were made durable (broker ack or local spool)",
            ("where",),
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "turnout_watch_intake_publish_seconds",
            "Time from sending a count to the broker's acks=all acknowledgement",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "turnout_watch_intake_commit_seconds",
            "Time to commit one group of write-ahead intents and done marks to SQLite (one fsync)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_intents = Histogram(
            "turnout_watch_intake_commit_intents",
            "Reports whose intents one commit wrote (the group commit's group; 0 for marks alone)",
            buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=registry,
        )
        self.rate_limited = Counter(
            "turnout_watch_intake_rate_limited", "Requests refused by the per-token rate limit", registry=registry
        )
        self.spool_depth = Gauge(
            "turnout_watch_intake_spool_depth", "Accepted counts waiting in the spool for the broker", registry=registry
        )
        self.broker_up = Gauge(
            "turnout_watch_intake_broker_up",
            "1 while counts go straight to the broker, 0 while spooling",
            registry=registry,
        )
        self.spool_errors = Counter(
            "turnout_watch_intake_spool_write_errors",
            "Failed writes to the spool (a full disk): while failing, reports the broker cannot take get 503",
            registry=registry,
        )
        self.spool_writable = Gauge(
            "turnout_watch_intake_spool_writable",
            "0 from a failed spool write until the next one succeeds, else 1",
            registry=registry,
        )
        #: The labelled children the intake counts with, looked up once (`labels()` takes a lock and
        #: builds a key on every call; a request would make several).
        self.outcomes = {outcome: self.counts.labels(outcome) for outcome in OUTCOMES}
        self.stored_in = {where: self.stored.labels(where) for where in ("broker", "spool")}
        self._requests: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def request_done(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its time (children kept per route and status: both bounded)."""
        children = self._requests.get((route, status))
        if children is None:
            children = self._requests[(route, status)] = (
                self.requests.labels(route, str(status)),
                self.request_seconds.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def watch(
        self,
        spool_depth: Callable[[], float],
        broker_up: Callable[[], float],
        spool_writable: Callable[[], float] = lambda: 1.0,
    ) -> None:
        """Values computed at scrape time."""
        self.spool_depth.set_function(spool_depth)
        self.broker_up.set_function(broker_up)
        self.spool_writable.set_function(spool_writable)
