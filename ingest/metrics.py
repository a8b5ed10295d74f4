"""The scraper's Prometheus metrics, built on a registry passed in (tests use a fresh one).

Labels stay bounded: `source` is one configured source, `page` and `reason` come from the closed lists
below, created up front so every series exists (at 0) from the first scrape of /metrics.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PAGES = ("list", "release")
FETCH_ERRORS = ("timeout", "connection", "http_5xx", "http_4xx", "too_large", "layout", "publish")
PARSE_FAILURES = ("no_regions", "no_as_of", "incomplete", "unknown_region", "unparsed")
OUTCOMES = ("published", "revision", "partial", "duplicate")
#: Publication -> broker acknowledgement: from a fast poll (a second or two) to a site down for minutes.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class ScraperMetrics:
    """Everything `turnout-watch scrape` exports for one source."""

    def __init__(self, registry: CollectorRegistry, source: str) -> None:
        self.source = source
        self.requests = Counter(
            "turnout_watch_scrape_requests", "HTTP requests made to the source, by page kind", ("source", "page"),
            registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "turnout_watch_scrape_errors", "Failed requests and publishes, by reason", ("source", "reason"),
            registry=registry,
        )  # fmt: skip
        self.parse_failures = Counter(
            "turnout_watch_scrape_parse_failures",
            "Release pages that did not parse to a complete release, by reason (raw bytes archived)",
            ("source", "reason"),
            registry=registry,
        )
        self.releases = Counter(
            "turnout_watch_scrape_releases",
            "Releases read, by outcome: published, revision, partial (published with regions missing), duplicate",
            ("source", "outcome"),
            registry=registry,
        )
        self.last_as_of = Gauge(
            "turnout_watch_scrape_last_release_as_of_timestamp_seconds",
            "Unix time the newest published release is 'as of'",
            ("source",),
            registry=registry,
        )
        self.lag = Histogram(
            "turnout_watch_scrape_release_lag_seconds",
            "From a release's publication on the site to its acknowledgement by the broker",
            ("source",),
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.overdue = Gauge(
            "turnout_watch_scrape_release_overdue_seconds",
            "Seconds since the last expected release was due and has not arrived (0 when none is overdue)",
            ("source",),
            registry=registry,
        )
        for page in PAGES:
            self.requests.labels(source, page)
        for reason in FETCH_ERRORS:
            self.errors.labels(source, reason)
        for reason in PARSE_FAILURES:
            self.parse_failures.labels(source, reason)
        for outcome in OUTCOMES:
            self.releases.labels(source, outcome)
        self.lag.labels(source)
        self.last_as_of.labels(source)

    def watch_overdue(self, seconds: Callable[[], float]) -> None:
        """Computed at scrape time, so the gauge grows while the poller is stuck in a timeout."""
        self.overdue.labels(self.source).set_function(seconds)

    def error(self, reason: str) -> None:
        self.errors.labels(self.source, reason).inc()

    def parse_failure(self, reason: str) -> None:
        self.parse_failures.labels(self.source, reason).inc()

    def outcome(self, outcome: str) -> None:
        self.releases.labels(self.source, outcome).inc()
