"""Per-region state for one election, and the detector rules run on each release.

The same `TurnoutTracker` runs inside the Faust agent (live and replay) and in the offline
`turnout-watch detect`, so both give the same flags for the same day. It knows nothing of Kafka:
a normalised release goes in (numpy arrays across regions), flags and per-region updates come out.
The rules live in `detectors/rules/`, each owning its test, severity, message and evidence; the
tracker keeps the state, runs them in a fixed order and lets the alert book decide what is news.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.alert_book import AlertBook
from detectors.config import DetectorConfig
from detectors.curves import ExpectedCurves
from detectors.observer_estimates import ratio_estimate
from detectors.rules.closing import GrowthAfterClose
from detectors.rules.jumps import CrossSectionalJump, ExpectedCurveJump, jump_scores
from detectors.rules.national import NationalInconsistency
from detectors.rules.observers import ObservedBatch, OfficialAboveObserved
from detectors.rules.revisions import ReleaseRevised, TimeReversal
from detectors.rules.values import FallingTurnout, OutOfRange
from detectors.stacked import prepare
from detectors.station_ledger import Bucket, RegionSums, StationChecker, StationLedger
from detectors.types import Batch, Rule
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import Flag, ObserverCount, RegionUpdate, Release, StationRow

__all__ = [
    "NATIONAL",
    "DetectorConfig",
    "ObservedEstimate",
    "ProcessResult",
    "RegionUpdate",
    "Release",
    "TurnoutTracker",
    "prepare_releases",
]

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)

#: Release-level rules: their flags are published as they come, before the release's region flags.
RELEASE_RULES: tuple[Rule[Batch], ...] = (TimeReversal(), ReleaseRevised())
#: Region rules, in the order their flags are published. Their anomalies can persist across releases,
#: so the alert book holds back a repeat at the same or a lower severity.
REGION_RULES: tuple[Rule[Batch], ...] = (
    OutOfRange(),
    FallingTurnout(),
    CrossSectionalJump(),
    ExpectedCurveJump(),
    GrowthAfterClose(),
    NationalInconsistency(),
)
REGION_DETECTORS = tuple(rule.detector for rule in REGION_RULES)
#: Official figures against the observers' estimate: region-level (protocols are per station, see StationChecker).
OBSERVED_RULE: Rule[ObservedBatch] = OfficialAboveObserved()
#: Fewest releases whose evidence `prepare_releases` computes together (below, stacking costs more than it saves).
STACK_AT_LEAST = 8


@dataclass(frozen=True)
class ObservedEstimate:
    """Observers' ratio estimate of a region's turnout at one release hour, beside the official figure."""

    election: str
    region_code: str
    as_of: str
    official: float
    estimate: float
    se: float
    stations: int

    @property
    def gap(self) -> float:
        return self.official - self.estimate


@dataclass
class ProcessResult:
    flags: list[Flag] = field(default_factory=list)
    updates: list[RegionUpdate] = field(default_factory=list)
    estimates: list[ObservedEstimate] = field(default_factory=list)
    stale: int = 0  # region figures ignored because a newer (or the same) figure was already seen
    held_back: int = 0  # flags of anomalies already active at the same or a higher severity
    counted_regions: set[str] = field(default_factory=set)  # regions observer counts came in from

    def extend(self, other: ProcessResult) -> None:
        self.flags.extend(other.flags)
        self.updates.extend(other.updates)
        self.estimates.extend(other.estimates)
        self.stale += other.stale
        self.held_back += other.held_back
        self.counted_regions |= other.counted_regions


class TurnoutTracker:
    """Last figure and time per region for one election; turns each release into flags and updates.

    Re-delivered releases (at-least-once delivery) are ignored per region by `as_of`, so processing
    the same release twice yields its flags once; a changed figure for the same `as_of` is a revision.
    """

    def __init__(
        self,
        election: str,
        names: Mapping[str, str] | None = None,
        config: DetectorConfig | None = None,
        curves: ExpectedCurves | None = None,
        zone: Any = None,
    ) -> None:
        self.election = election
        self.zone = zone  # the watch room's zone: station flags' "as_of" (Kazakhstan: Asia/Almaty)
        self.names = dict(names or {})
        self.config = config or DetectorConfig()
        self.curves = curves
        self.last_value: dict[str, float] = {}
        self.last_time: dict[str, float] = {}
        self.since: dict[str, float] = {}  # when each region's last figure was first reported (stale repeats)
        self.pace: dict[str, float] = {}  # points per hour over the last interval each region's figure moved in
        self.latest_as_of: float = float("-inf")
        self.seen: set[tuple[float, int]] = set()  # (as_of, content) of every release processed
        self.observed = RegionSums()
        self.stations = StationLedger(election)
        self.checker = StationChecker(self.names, self.config)
        self.official: dict[float, dict[str, float]] = {}  # as_of -> region figures, for observer comparisons
        self.alerts = AlertBook()
        self._staged: tuple[Release, tuple[float, int], Batch] | None = None  # see `stage`
        self._tz: Any = None  # the time zone of the releases, for observer flags' "as_of"

    def process_many(self, releases: Iterable[Release]) -> ProcessResult:
        result = ProcessResult()
        for release in releases:
            result.extend(self.process(release))
        return result

    def stage(self, release: Release) -> Batch:
        """The batch `process` will judge `release` by (from what the tracker knows now), kept for it.

        Changes nothing else: stage one release of each of many trackers, `prepare_releases` computes
        their evidence together, then `process` each of them before anything else reaches its tracker.
        """
        if release.election != self.election:
            raise ValueError(f"release of {release.election!r} given to the tracker of {self.election!r}")
        content = (release.as_of.timestamp(), hash(tuple(sorted(release.turnout.items()))))
        b = Batch.of(
            release,
            self.last_value,
            self.last_time,
            latest_as_of=self.latest_as_of,
            duplicate=content in self.seen,
            names=self.names,
            curves=self.curves,
            since=self.since,
            pace=self.pace,
        )
        self._staged = (release, content, b)
        return b

    def process(self, release: Release) -> ProcessResult:
        staged, self._staged = self._staged, None
        if staged is None or staged[0] is not release:
            self.stage(release)
            staged, self._staged = self._staged, None
        assert staged is not None
        _, content, b = staged  # its evidence computed with others' (`prepare_releases`), or by the rules now
        self.seen.add(content)
        self._tz = release.zone
        raised = [flag for rule in REGION_RULES for flag in rule.flags(b, self.config)]
        assessed = [b.codes[i] for i in np.flatnonzero(b.fresh).tolist()]
        published, held = self.alerts.admit(raised, assessed, REGION_DETECTORS)
        released = [flag for rule in RELEASE_RULES for flag in rule.flags(b, self.config)]
        result = ProcessResult(flags=released + published, held_back=held)
        changed = b.fresh | b.revised
        result.stale = len(b.codes) - int(np.count_nonzero(changed))
        jump = jump_scores(b, self.config)
        # Python floats and bools from here on: one conversion per array, no numpy call per region.
        fresh, value, prev, delta = b.fresh.tolist(), b.value.tolist(), b.prev.tolist(), b.delta.tolist()
        hours, since, z = b.hours.tolist(), b.since.tolist(), jump.z.tolist()
        now, codes, election, as_of = b.now, b.codes, self.election, b.as_of
        figures = self.official.setdefault(now, {})
        updates = result.updates
        for i in np.flatnonzero(changed).tolist():
            code = codes[i]
            if fresh[i] and value[i] != prev[i]:  # it moved (a repeated figure keeps its time and pace)
                moved_for = (now - since[i]) / 3600.0
                if moved_for > 0:  # NaN (first figure) is not
                    self.pace[code] = delta[i] / moved_for
                self.since[code] = now
            elif not fresh[i]:  # revised (a figure is never both fresh and revised)
                self.since[code] = now
            self.last_value[code] = value[i]
            self.last_time[code] = now
            figures[code] = value[i]
            if fresh[i]:
                updates.append(RegionUpdate(election, code, as_of, value[i], prev[i], delta[i], hours[i], now, z[i]))
        self.latest_as_of = max(self.latest_as_of, now)
        if self.observed.has(election, now):  # no observer counts at this hour: nothing to compare
            result.extend(self._compare_observed(now))
        return result

    def add_counts(self, counts: Iterable[StationRow | ObserverCount]) -> ProcessResult:
        """Observer counts of this election: each station's latest per hour replaces its earlier one.

        The regions' sums change by the replaced contributions; the hours that have a release are
        compared again, and stations with both a tally and a commission figure are checked.
        """
        update = self.stations.add(counts)
        result = self.add_observed(update.deltas)
        result.flags.extend(self.checker.check(update.comparisons, self.zone or self._tz))
        result.counted_regions |= update.regions
        return result

    def add_observed(self, deltas: Mapping[Bucket, FloatArray]) -> ProcessResult:
        """New observer statistics (from a `StationLedger`); re-compare the hours that have a release."""
        touched = {bucket for election, _, bucket in self.observed.apply(deltas) if election == self.election}
        result = ProcessResult()
        for bucket in sorted(touched):
            if bucket in self.official:
                result.extend(self._compare_observed(bucket))
        return result

    def _compare_observed(self, bucket: float) -> ProcessResult:
        """Official figures as of `bucket` against the observers' ratio estimate at the same hour."""
        cfg = self.config
        figures = {c: v for c, v in self.official.get(bucket, {}).items() if c != NATIONAL}
        codes = sorted(figures)
        stats = self.observed.at(self.election, bucket, codes)
        counted = stats[:, 0] >= cfg.observed_min_stations
        if not counted.any():
            return ProcessResult()
        estimate = ratio_estimate(stats)
        official = np.array([figures[c] for c in codes])
        as_of = datetime.fromtimestamp(bucket, tz=self._tz).isoformat()
        batch = ObservedBatch(self.election, as_of, self.names, codes, official, stats, estimate, counted)
        assessed = [codes[i] for i in np.flatnonzero(counted).tolist()]
        published, held = self.alerts.admit(OBSERVED_RULE.flags(batch, cfg), assessed, (OBSERVED_RULE.detector,))
        estimates = [
            ObservedEstimate(
                self.election,
                codes[i],
                as_of,
                float(official[i]),
                float(estimate.estimate[i]),
                float(estimate.se[i]),
                int(stats[i, 0]),
            )
            for i in np.flatnonzero(stats[:, 0] >= 2).tolist()
        ]
        return ProcessResult(flags=published, held_back=held, estimates=estimates)


def prepare_releases(work: Iterable[tuple[TurnoutTracker, Release]]) -> None:
    """Stage each release with its tracker (one release per tracker) and compute the evidence of all of
    them at once (`detectors.stacked`); then `process` each, in any order, before its tracker sees
    anything else. The results are those of `process` alone, to the bit; this only saves numpy calls."""
    work = list(work)
    if len(work) < STACK_AT_LEAST:  # too few to gain: the rules compute each release's evidence alone
        return
    by_config: dict[DetectorConfig, list[Batch]] = {}
    for tracker, release in work:
        by_config.setdefault(tracker.config, []).append(tracker.stage(release))
    for config, batches in by_config.items():
        try:
            prepare(batches, config)
        except Exception:  # a bug here must not cost the releases: each computes its own in `process`
            log.exception("preparing %d releases together failed; each is judged alone", len(batches))
            for b in batches:
                b.shared.clear()
