"""The pipeline's Prometheus metrics, built on a registry passed in (tests use a fresh one).

Label values stay few and bounded: `region` is an ISO 3166-2:KZ code (about 20, plus `KZ` for the
national figure), `detector` and `severity` come from closed lists, `stream` names one of our topics.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from detectors.tracker import ObservedEstimate, RegionUpdate
from turnout_watch.core.records import DETECTORS, SEVERITIES, Flag

STREAMS = ("releases", "observer_counts")
ANNOTATION_OUTCOMES = ("posted", "failed", "dropped")
#: Flags the observer-count agent raises (its input is keyed by station, not election).
STATION_SIDE = ("protocol_above_tally",)
#: From a few milliseconds (agent on one machine) to minutes (a worker catching up after a restart).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class PipelineMetrics:
    """Everything a worker exports; one instance per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._children: dict[tuple[str, str], tuple[Gauge, Gauge, Gauge, Gauge]] = {}
        self._estimate_as_of: dict[tuple[str, str], str] = {}
        labels = ("election", "region")
        self.turnout = Gauge(
            "turnout_watch_region_turnout_percent",
            "Latest official turnout, percent of voters on the lists",
            labels,
            registry=registry,
        )
        self.delta = Gauge(
            "turnout_watch_region_delta_points",
            "Change of official turnout since the region's previous release, points",
            labels,
            registry=registry,
        )
        self.rate = Gauge(
            "turnout_watch_region_rate_points_per_hour",
            "Change of official turnout since the previous release, points per hour",
            labels,
            registry=registry,
        )
        self.jump_z = Gauge(
            "turnout_watch_region_jump_z",
            "Robust z of the region's latest rise against the other regions' at the same release",
            labels,
            registry=registry,
        )
        self.as_of = Gauge(
            "turnout_watch_region_as_of_timestamp_seconds",
            "Unix time of the release the region's figure is 'as of'",
            labels,
            registry=registry,
        )
        self.observed = Gauge(
            "turnout_watch_region_observed_turnout_percent",
            "Observers' ratio estimate of turnout at the latest release hour with counts",
            labels,
            registry=registry,
        )
        self.observed_se = Gauge(
            "turnout_watch_region_observed_se_points",
            "Standard error of the observers' estimate, points",
            labels,
            registry=registry,
        )
        self.observed_stations = Gauge(
            "turnout_watch_region_observed_stations",
            "Observed stations behind the estimate",
            labels,
            registry=registry,
        )
        self.observed_gap = Gauge(
            "turnout_watch_region_official_minus_observed_points",
            "Official turnout minus the observers' estimate at the same hour, points",
            labels,
            registry=registry,
        )
        self.last_flag = Gauge(
            "turnout_watch_region_last_flag_timestamp_seconds",
            "Unix time the latest flag of this detector and severity was raised for the region (alert rules)",
            ("election", "region", "detector", "severity"),
            registry=registry,
        )
        self.last_flag_as_of = Gauge(
            "turnout_watch_region_last_flag_as_of_timestamp_seconds",
            "Unix time of the release (or hour) the latest flag of this detector and severity is about",
            ("election", "region", "detector", "severity"),
            registry=registry,
        )
        self.last_count = Gauge(
            "turnout_watch_region_last_observer_count_timestamp_seconds",
            "Unix time an observer count from the region last reached the pipeline",
            labels,
            registry=registry,
        )
        self.polls = Gauge(
            "turnout_watch_election_polls_timestamp_seconds",
            "When polls open and close (edge: open|close), from the election's releases",
            ("election", "edge"),
            registry=registry,
        )
        self.region_info = Gauge(
            "turnout_watch_region_info",
            "Display name of a region code (always 1)",
            ("region", "name"),
            registry=registry,
        )
        self.flags = Counter(
            "turnout_watch_flags",
            "Flags raised, by detector and severity",
            ("detector", "severity"),
            registry=registry,
        )
        self.events = Counter(
            "turnout_watch_events_processed",
            "Events the agents processed, by stream",
            ("stream",),
            registry=registry,
        )
        self.malformed = Counter(
            "turnout_watch_events_malformed",
            "Events the agents could not decode and skipped, by stream",
            ("stream",),
            registry=registry,
        )
        self.latency = Histogram(
            "turnout_watch_event_latency_seconds",
            "From the event reaching Kafka to its flags and metrics being updated",
            ("stream",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.annotations = Counter(
            "turnout_watch_annotations",
            "Grafana annotations (CEC releases, critical flags), by outcome: posted, failed, dropped (queue full)",
            ("outcome",),
            registry=registry,
        )
        for outcome in ANNOTATION_OUTCOMES:
            self.annotations.labels(outcome)
        for detector in DETECTORS:
            for severity in SEVERITIES:
                self.flags.labels(detector, severity)
        for stream in STREAMS:
            self.events.labels(stream)
            self.malformed.labels(stream)
            self.latency.labels(stream)

    def forget_election(self, election: str) -> int:
        """Remove every series labelled with `election`; return how many.

        A worker calls this for the elections whose partitions a rebalance gave to another worker, so
        each election's figures come from exactly one worker and no panel shows two values for a region.
        Every per-election gauge counts, including ones added later: they are found by their labels. Not
        the observer-count agent's series (last count, station flags): that agent's input is keyed by
        station, so it spreads one election over every worker and those series are per worker anyway.
        """
        removed = 0
        for gauge in [m for m in vars(self).values() if isinstance(m, Gauge) and m is not self.last_count]:
            for family in gauge.collect():
                for sample in family.samples:
                    if sample.labels.get("election") == election and sample.labels.get("detector") not in STATION_SIDE:
                        with contextlib.suppress(KeyError):
                            gauge.remove(*sample.labels.values())
                            removed += 1
        self._children = {k: v for k, v in self._children.items() if k[0] != election}
        self._estimate_as_of = {k: v for k, v in self._estimate_as_of.items() if k[0] != election}
        return removed

    def name_regions(self, names: dict[str, str]) -> None:
        for code, name in names.items():
            self.region_info.labels(code, name).set(1)

    def _region(self, election: str, region: str) -> tuple[Gauge, Gauge, Gauge, Gauge]:
        """The four per-region gauges, looked up once (labels() is the hot path's main cost)."""
        key = (election, region)
        children = self._children.get(key)
        if children is None:
            children = (
                self.turnout.labels(*key),
                self.delta.labels(*key),
                self.rate.labels(*key),
                self.as_of.labels(*key),
            )
            self._children[key] = children
        return children

    def record_updates(self, updates: list[RegionUpdate]) -> None:
        """Set the per-region gauges; in a batch only each region's last update matters to a gauge."""
        latest = {(u.election, u.region_code): u for u in updates}
        for update in latest.values():
            turnout, delta, rate, as_of = self._region(update.election, update.region_code)
            turnout.set(update.value)
            as_of.set(update.as_of_seconds)
            if update.delta == update.delta:  # not NaN: the region had a previous figure
                delta.set(update.delta)
                rate.set(update.rate)
            if update.jump_z == update.jump_z:
                self.jump_z.labels(update.election, update.region_code).set(update.jump_z)

    def record_estimates(self, estimates: list[ObservedEstimate]) -> None:
        """Latest hour wins per region (estimates of older hours arrive when late counts do)."""
        latest: dict[tuple[str, str], ObservedEstimate] = {}
        for e in estimates:
            key = (e.election, e.region_code)
            if key not in latest or e.as_of >= latest[key].as_of:
                latest[key] = e
        for key, e in latest.items():
            if key in self._estimate_as_of and self._estimate_as_of[key] > e.as_of:
                continue
            self._estimate_as_of[key] = e.as_of
            self.observed.labels(*key).set(e.estimate)
            self.observed_se.labels(*key).set(e.se)
            self.observed_stations.labels(*key).set(e.stations)
            self.observed_gap.labels(*key).set(e.gap)

    def record_flags(self, flags: list[Flag], now: float | None = None, count: bool = True) -> None:
        """`count=False`: only the per-region gauges (a worker rebuilding an election it took over; the
        flags were counted by the worker that raised them)."""
        raised = time.time() if now is None else now
        for flag in flags:
            if count:
                self.flags.labels(flag.detector, flag.severity).inc()
            key = (flag.election, flag.region_code, flag.detector, flag.severity)
            self.last_flag.labels(*key).set(raised)
            self.last_flag_as_of.labels(*key).set(datetime.fromisoformat(flag.as_of).timestamp())

    def record_counts(self, regions: set[tuple[str, str]], now: float | None = None) -> None:
        """Observer counts from these (election, region) pairs just reached the pipeline."""
        seen = time.time() if now is None else now
        for key in regions:
            self.last_count.labels(*key).set(seen)

    def record_polls(self, election: str, opens: datetime | None, closes: datetime | None) -> None:
        if opens is not None:
            self.polls.labels(election, "open").set(opens.timestamp())
        if closes is not None:
            self.polls.labels(election, "close").set(closes.timestamp())
