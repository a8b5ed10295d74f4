"""The worker's Prometheus metrics, built on a registry passed in (tests use a fresh one).

Two kinds of series:

* **Figures**, read when Prometheus scrapes: each region's turnout, delta, points per hour, jump z,
  "as of", the observers' estimate, the time of its last flags, how many distinct flags the election
  has, and the election's polls. The release agent keeps them per election in an `ElectionFigures`
  beside the election's tracker; `FiguresCollector`
  turns whatever the worker holds at that moment into metric families (as client_python's
  `gc_collector.py` reads `gc.get_stats()` when scraped instead of copying it into gauges). A worker that
  loses an election to a rebalance drops its tracker and figures together, and the series go with them:
  nothing to remove by hand, nothing left behind to show a second line for a region.
  Flags are counted here too, from the flags themselves (each once, by its key), not by a per-process
  counter: the worker that takes an election over reads the flags topic back, so the count survives
  restarts and rebalances, and a redelivered release adds nothing.
* **Counters** (events, malformed events, broker resets, annotations) and the latency histogram:
  ordinary client_python metrics, per worker.

Every family is declared once below (`Family`); the backfill (turnout_watch/services/backfill.py)
writes the same families with timestamps. Label values stay few and bounded: `region` is an ISO
3166-2:KZ code (about 20, plus `KZ` for the national figure), `detector` and `severity` come from
closed lists, `stream` names one of our topics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.tracker import ObservedEstimate
from turnout_watch.core.records import Flag, RegionUpdate

STREAMS = ("releases", "station_counts", "observer_counts")
ANNOTATION_OUTCOMES = ("posted", "failed", "dropped")
#: From a few milliseconds (agent on one machine) to minutes (a worker catching up after a restart).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass(frozen=True)
class Family:
    """One metric family's name, help and label names: the live worker and the backfill write the same."""

    name: str
    documentation: str
    labels: tuple[str, ...]

    def gauge(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def counter(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labels)


_REGION = ("election", "region")
_FLAG = ("election", "region", "detector", "severity")

TURNOUT = Family(
    "turnout_watch_region_turnout_percent", "Latest official turnout, percent of voters on the lists", _REGION
)
DELTA = Family(
    "turnout_watch_region_delta_points",
    "Change of official turnout since the region's previous release, points",
    _REGION,
)
RATE = Family(
    "turnout_watch_region_rate_points_per_hour",
    "Change of official turnout since the previous release, points per hour",
    _REGION,
)
JUMP_Z = Family(
    "turnout_watch_region_jump_z",
    "Robust z of the region's latest rise against the other regions' at the same release",
    _REGION,
)
AS_OF = Family(
    "turnout_watch_region_as_of_timestamp_seconds", "Unix time of the release the region's figure is 'as of'", _REGION
)
OBSERVED = Family(
    "turnout_watch_region_observed_turnout_percent",
    "Observers' ratio estimate of turnout at the latest release hour with counts",
    _REGION,
)
OBSERVED_SE = Family(
    "turnout_watch_region_observed_se_points", "Standard error of the observers' estimate, points", _REGION
)
OBSERVED_STATIONS = Family("turnout_watch_region_observed_stations", "Observed stations behind the estimate", _REGION)
OBSERVED_GAP = Family(
    "turnout_watch_region_official_minus_observed_points",
    "Official turnout minus the observers' estimate at the same hour, points",
    _REGION,
)
LAST_FLAG = Family(
    "turnout_watch_region_last_flag_timestamp_seconds",
    "Unix time the latest flag of this detector and severity was raised for the region (alert rules)",
    _FLAG,
)
LAST_FLAG_AS_OF = Family(
    "turnout_watch_region_last_flag_as_of_timestamp_seconds",
    "Unix time of the release (or hour) the latest flag of this detector and severity is about",
    _FLAG,
)
LAST_COUNT = Family(
    "turnout_watch_region_last_observer_count_timestamp_seconds",
    "Unix time an observer count from the region last reached the pipeline",
    _REGION,
)
POLLS = Family(
    "turnout_watch_election_polls_timestamp_seconds",
    "When polls open and close (edge: open|close), from the election's releases",
    ("election", "edge"),
)
REGION_POLLS = Family(
    "turnout_watch_region_polls_timestamp_seconds",
    "When polls open and close in the region, on its own clock (edge: open|close), from the election's releases",
    ("election", "region", "edge"),
)
FLAGS = Family(
    "turnout_watch_election_flags",
    "Distinct flags published for the election, by detector and severity (each flag once, by its key)",
    ("election", "detector", "severity"),
)
#: The families `FiguresCollector` reads at scrape time, in the order they are exposed.
FIGURES = (
    TURNOUT,
    DELTA,
    RATE,
    JUMP_Z,
    AS_OF,
    OBSERVED,
    OBSERVED_SE,
    OBSERVED_STATIONS,
    OBSERVED_GAP,
    LAST_FLAG,
    LAST_FLAG_AS_OF,
    LAST_COUNT,
    POLLS,
    REGION_POLLS,
    FLAGS,
)
REGION_INFO = Family("turnout_watch_region_info", "Display name of a region code (always 1)", ("region", "name"))
EVENTS = Family("turnout_watch_events_processed", "Events the agents processed, by stream", ("stream",))
MALFORMED = Family(
    "turnout_watch_events_malformed",
    "Events the agents could not use: written to the dead-letter topic with the reason, by stream",
    ("stream",),
)
BROKER_RESETS = Family(
    "turnout_watch_broker_resets",
    "Times the worker found its partitions behind its committed offsets (a wiped or recreated topic) and "
    "started them again from the beginning",
    (),
)
LATENCY = Family(
    "turnout_watch_event_latency_seconds",
    "From the event reaching Kafka to its flags and metrics being updated",
    ("stream",),
)
ANNOTATIONS = Family(
    "turnout_watch_annotations",
    "Grafana annotations (CEC releases, critical flags), by outcome: posted, failed, dropped (queue full)",
    ("outcome",),
)

#: One sample of a figure: its family, its label values (in the family's order) and its value.
Sample = tuple[Family, tuple[str, ...], float]


class Figures(Protocol):
    """What `FiguresCollector` reads: the `ElectionFigures` of the elections a worker holds."""

    def samples(self) -> Iterator[Sample]: ...


def _as_of_seconds(flag: Flag) -> float:
    return datetime.fromisoformat(flag.as_of).timestamp()


class ElectionFigures:
    """What the release agent last reported of one election: the values its per-region series show.

    Kept beside the election's tracker, so a worker drops both at once when a rebalance moves the
    election away. The rules are those the per-region gauges always had: turnout and "as of" from each
    region's latest update; delta and rate from the latest update that had a previous figure (0 until
    the region has one, the series being created with its first figure); jump z from the latest update
    that had one; the observers' estimate of the latest hour (a late count re-estimating an older hour
    does not replace it); per detector and severity, when the latest flag was raised and its hour,
    and how many distinct flags were published (`admit_flags`: each key once); per region, when an
    observer count last came in.
    """

    def __init__(self, election: str) -> None:
        self.election = election
        self.latest: dict[str, RegionUpdate] = {}
        self.moved: dict[str, tuple[float, float]] = {}  # region -> (delta, points per hour)
        self.jump_z: dict[str, float] = {}
        self.estimates: dict[str, ObservedEstimate] = {}
        self.flags: dict[tuple[str, str, str], tuple[float, float]] = {}  # (region, detector, severity) -> times
        self.published: set[str] = set()  # keys of the flags published (core.records.Flag.key)
        self.flag_counts: dict[tuple[str, str], int] = {}  # (detector, severity) -> distinct flags
        self.last_count: dict[str, float] = {}  # region -> unix time an observer count last came in
        self.polls: dict[str, float] = {}  # edge (open|close) -> unix time
        self.region_polls: dict[tuple[str, str], float] = {}  # (region, edge) -> unix time

    def record_updates(self, updates: Iterable[RegionUpdate]) -> None:
        """A batch's updates: only each region's last one counts, as a gauge would show only that."""
        for code, update in {u.region_code: u for u in updates}.items():
            self.latest[code] = update
            self.moved.setdefault(code, (0.0, 0.0))
            if update.delta == update.delta:  # not NaN: the region had a previous figure
                self.moved[code] = (update.delta, update.rate)
            if update.jump_z == update.jump_z:
                self.jump_z[code] = update.jump_z

    def record_estimates(self, estimates: Iterable[ObservedEstimate]) -> None:
        """Latest hour wins per region (estimates of older hours arrive when late counts do)."""
        for estimate in estimates:
            kept = self.estimates.get(estimate.region_code)
            if kept is None or estimate.as_of >= kept.as_of:  # ISO times in one zone: text order is time order
                self.estimates[estimate.region_code] = estimate

    def admit_flags(self, flags: Iterable[Flag], raised: float) -> list[Flag]:
        """The flags not published before (by key), now counted as published; the rest are dropped.

        `raised`: when they reached the flags topic (now for the agent's own, the record's time when
        read back from the topic).
        """
        new = []
        for flag in flags:
            key = flag.key
            if key in self.published:
                continue
            self.published.add(key)
            counted = (flag.detector, flag.severity)
            self.flag_counts[counted] = self.flag_counts.get(counted, 0) + 1
            timestamps = (raised, _as_of_seconds(flag))
            kept = self.flags.get((flag.region_code, flag.detector, flag.severity))
            if kept is None or kept[0] <= raised:
                self.flags[(flag.region_code, flag.detector, flag.severity)] = timestamps
            new.append(flag)
        return new

    def withdraw_flags(self, flags: Iterable[Flag]) -> None:
        """Flags whose publication failed: not published after all (the batch is redelivered)."""
        for flag in flags:
            if flag.key in self.published:
                self.published.discard(flag.key)
                counted = (flag.detector, flag.severity)
                self.flag_counts[counted] -= 1

    def record_counts(self, regions: Iterable[str], seen: float) -> None:
        for code in regions:
            if self.last_count.get(code, 0.0) <= seen:
                self.last_count[code] = seen

    def record_polls(
        self,
        opens: datetime | None,
        closes: datetime | None,
        opens_by_region: Mapping[str, datetime] | None = None,
        closes_by_region: Mapping[str, datetime] | None = None,
    ) -> None:
        """The day's polling hours, and each region's own (every region on its own clock)."""
        if opens is not None:
            self.polls["open"] = opens.timestamp()
        if closes is not None:
            self.polls["close"] = closes.timestamp()
        for edge, instants in (("open", opens_by_region), ("close", closes_by_region)):
            for code, when in (instants or {}).items():
                self.region_polls[(code, edge)] = when.timestamp()

    def samples(self) -> Iterator[Sample]:
        e = self.election
        for code, update in self.latest.items():
            yield TURNOUT, (e, code), update.value
            yield AS_OF, (e, code), update.as_of_seconds
        for code, (delta, rate) in self.moved.items():
            yield DELTA, (e, code), delta
            yield RATE, (e, code), rate
        for code, z in self.jump_z.items():
            yield JUMP_Z, (e, code), z
        for code, estimate in self.estimates.items():
            yield OBSERVED, (e, code), estimate.estimate
            yield OBSERVED_SE, (e, code), estimate.se
            yield OBSERVED_STATIONS, (e, code), float(estimate.stations)
            yield OBSERVED_GAP, (e, code), estimate.gap
        for (code, detector, severity), (raised, as_of) in self.flags.items():
            yield LAST_FLAG, (e, code, detector, severity), raised
            yield LAST_FLAG_AS_OF, (e, code, detector, severity), as_of
        for edge, when in self.polls.items():
            yield POLLS, (e, edge), when
        for (code, edge), when in self.region_polls.items():
            yield REGION_POLLS, (e, code, edge), when
        for code, seen in self.last_count.items():
            yield LAST_COUNT, (e, code), seen
        for (detector, severity), count in self.flag_counts.items():
            yield FLAGS, (e, detector, severity), float(count)


class FiguresCollector(Collector):
    """The figure families, built when Prometheus scrapes from the figures the worker holds right then."""

    def __init__(self, sources: Callable[[], Iterable[Figures]]) -> None:
        self.sources = sources

    def describe(self) -> Iterable[Metric]:
        """The families' names for the registry's duplicate check, without reading any figures."""
        return [family.gauge() for family in FIGURES]

    def collect(self) -> Iterable[Metric]:
        families = {family: family.gauge() for family in FIGURES}
        for figures in self.sources():
            for family, labels, value in figures.samples():
                families[family].add_metric(labels, value)
        return list(families.values())


class PipelineMetrics:
    """Everything a worker exports; one instance per registry.

    The figures come from `read_elections_from` (the worker's per-election figures, streams/agents.py);
    the rest are ordinary metrics set as events go by.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._elections: Callable[[], Iterable[ElectionFigures]] = lambda: ()
        registry.register(FiguresCollector(lambda: self._elections()))
        self.region_info = Gauge(REGION_INFO.name, REGION_INFO.documentation, REGION_INFO.labels, registry=registry)
        self.broker_resets = Counter(BROKER_RESETS.name, BROKER_RESETS.documentation, registry=registry)
        self.events = Counter(EVENTS.name, EVENTS.documentation, EVENTS.labels, registry=registry)
        self.malformed = Counter(MALFORMED.name, MALFORMED.documentation, MALFORMED.labels, registry=registry)
        self.latency = Histogram(
            LATENCY.name, LATENCY.documentation, LATENCY.labels, buckets=LATENCY_BUCKETS, registry=registry
        )
        self.annotations = Counter(ANNOTATIONS.name, ANNOTATIONS.documentation, ANNOTATIONS.labels, registry=registry)
        for outcome in ANNOTATION_OUTCOMES:
            self.annotations.labels(outcome)
        for stream in STREAMS:
            self.events.labels(stream)
            self.malformed.labels(stream)
            self.latency.labels(stream)

    def read_elections_from(self, elections: Callable[[], Iterable[ElectionFigures]]) -> None:
        """Where the per-election figures are at scrape time: the elections the worker holds then."""
        self._elections = elections

    def name_regions(self, names: dict[str, str]) -> None:
        for code, name in names.items():
            self.region_info.labels(code, name).set(1)
