"""Per-region state for one election and the detectors run on each release.

The same `TurnoutTracker` runs inside the Faust agent (live and replay) and in the offline
`turnout-watch detect`, so both give the same flags for the same day. It knows nothing of Kafka:
a normalised release goes in (numpy arrays across regions), flags and per-region updates come out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.alert_book import AlertBook
from detectors.closing import growth_after_close
from detectors.config import DetectorConfig
from detectors.curves import ExpectedCurves
from detectors.jumps import JumpScores, cross_sectional_jump, expected_curve_jump, expected_curve_residuals
from detectors.national import weighted_national
from detectors.observer_estimates import official_above_observed, ratio_estimate, student_threshold
from detectors.station_ledger import Bucket, RegionSums
from detectors.values import falling, out_of_range
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import REGION_DETECTORS, Flag, RegionUpdate, Release, Severity

__all__ = [
    "NATIONAL",
    "DetectorConfig",
    "ObservedEstimate",
    "ProcessResult",
    "RegionUpdate",
    "Release",
    "TurnoutTracker",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
OBSERVED_DETECTORS = ("official_above_observed",)  # region-level; protocols are per station


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

    def extend(self, other: ProcessResult) -> None:
        self.flags.extend(other.flags)
        self.updates.extend(other.updates)
        self.estimates.extend(other.estimates)
        self.stale += other.stale
        self.held_back += other.held_back


@dataclass(frozen=True)
class _Batch:
    """One release as aligned arrays: the working set of every detector."""

    release: Release
    codes: list[str]
    value: FloatArray
    prev: FloatArray
    prev_t: FloatArray
    fresh: BoolArray  # newer than the region's last figure
    revised: BoolArray  # same as_of as the last figure, different value
    national: BoolArray
    now: float
    delta: FloatArray  # points since the region's previous figure
    hours: FloatArray  # hours since it
    as_of: str


@dataclass(frozen=True)
class _CurveModel:
    eligible: BoolArray
    ratio: FloatArray  # how much each region multiplied between the two hours on past days
    day: float  # this day's pace relative to past days (median over regions)
    expected: FloatArray
    residual: FloatArray
    learned_from: tuple[str, ...]


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
    ) -> None:
        self.election = election
        self.names = dict(names or {})
        self.config = config or DetectorConfig()
        self.curves = curves
        self.last_value: dict[str, float] = {}
        self.last_time: dict[str, float] = {}
        self.latest_as_of: float = float("-inf")
        self.seen: set[tuple[float, int]] = set()  # (as_of, content) of every release processed
        self.observed = RegionSums()
        self.official: dict[float, dict[str, float]] = {}  # as_of -> region figures, for observer comparisons
        self.alerts = AlertBook()
        self._tz: Any = None  # the time zone of the releases, for observer flags' "as_of"

    def process_many(self, releases: Iterable[Release]) -> ProcessResult:
        result = ProcessResult()
        for release in releases:
            result.extend(self.process(release))
        return result

    def process(self, release: Release) -> ProcessResult:
        if release.election != self.election:
            raise ValueError(f"release of {release.election!r} given to the tracker of {self.election!r}")
        b = self._batch(release)
        self._tz = release.zone
        model = self._curve_model(b)
        jump = self._jump_scores(b)
        raised = [
            *self._value_flags(b),
            *self._jump_flags(b, model, jump),
            *self._curve_flags(b, model),
            *self._after_close_flags(b),
            *self._national_flags(b),
        ]
        assessed = [b.codes[i] for i in np.flatnonzero(b.fresh).tolist()]
        published, held = self.alerts.admit(raised, assessed, REGION_DETECTORS)
        result = ProcessResult(flags=self._release_flags(b) + published, held_back=held)
        result.stale = int(np.sum(~b.fresh & ~b.revised))
        for i in np.flatnonzero(b.fresh | b.revised).tolist():
            code = b.codes[i]
            self.last_value[code] = float(b.value[i])
            self.last_time[code] = b.now
            if b.fresh[i]:
                result.updates.append(
                    RegionUpdate(
                        self.election,
                        code,
                        b.as_of,
                        float(b.value[i]),
                        float(b.prev[i]),
                        float(b.delta[i]),
                        float(b.hours[i]),
                        b.now,
                        float(jump.z[i]),
                    )
                )
        self.latest_as_of = max(self.latest_as_of, b.now)
        figures = self.official.setdefault(b.now, {})
        figures.update({b.codes[i]: float(b.value[i]) for i in np.flatnonzero(b.fresh | b.revised).tolist()})
        result.extend(self._compare_observed(b.now))
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
        gap, z = official_above_observed(official, estimate)
        low, high = estimate.interval()
        as_of = datetime.fromtimestamp(bucket, tz=self._tz).isoformat()
        raised = []
        dof = stats[:, 0] - 1
        warn_at = student_threshold(cfg.observed_z_warning, dof)
        critical_at = student_threshold(cfg.observed_z_critical, dof)
        with np.errstate(invalid="ignore"):
            hit = counted & (gap >= cfg.observed_min_gap_points) & (z >= warn_at)
        for i in np.flatnonzero(hit).tolist():
            critical = gap[i] >= cfg.observed_critical_gap_points and z[i] >= critical_at[i]
            raised.append(
                self._flag(
                    codes[i],
                    as_of,
                    "official_above_observed",
                    "critical" if critical else "warning",
                    float(official[i]),
                    float(estimate.estimate[i]),
                    f"{self._name(codes[i])}: official {official[i]:.2f}% is {gap[i]:.1f} points above what observers "
                    f"counted at {int(stats[i, 0])} stations ({estimate.estimate[i]:.1f}%, 95% CI "
                    f"{low[i]:.1f}-{high[i]:.1f})",
                    {
                        "stations": int(stats[i, 0]),
                        "se_points": round(float(estimate.se[i]), 4),
                        "ci95": [round(float(low[i]), 4), round(float(high[i]), 4)],
                        "gap_points": round(float(gap[i]), 4),
                        "z": round(float(z[i]), 2),
                    },
                )
            )
        assessed = [codes[i] for i in np.flatnonzero(counted).tolist()]
        published, held = self.alerts.admit(raised, assessed, OBSERVED_DETECTORS)
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

    def _batch(self, release: Release) -> _Batch:
        codes = list(release.turnout)
        now = release.as_of.timestamp()
        value = np.array([release.turnout[c] for c in codes], dtype=np.float64)
        prev = np.array([self.last_value.get(c, np.nan) for c in codes], dtype=np.float64)
        prev_t = np.array([self.last_time.get(c, np.nan) for c in codes], dtype=np.float64)
        fresh = ~(prev_t >= now)  # NaN (never seen) counts as fresh
        revised = (prev_t == now) & (value != prev)
        national = np.array([c == NATIONAL for c in codes], dtype=bool)
        delta, hours = value - prev, (now - prev_t) / 3600.0
        return _Batch(
            release, codes, value, prev, prev_t, fresh, revised, national, now, delta, hours, release.as_of.isoformat()
        )

    def _name(self, code: str) -> str:
        return self.names.get(code, code)

    def _flag(
        self,
        code: str,
        as_of: str,
        detector: str,
        severity: Severity,
        value: float,
        expected: float | None,
        message: str,
        evidence: dict[str, Any],
    ) -> Flag:
        return Flag(
            self.election,
            self._name(code),
            code,
            as_of,
            detector,
            severity,
            round(value, 4),
            None if expected is None else round(expected, 4),
            message,
            evidence,
        )

    def _local(self, b: _Batch, when: float) -> datetime:
        return datetime.fromtimestamp(when, tz=b.release.zone)

    def _release_flags(self, b: _Batch) -> list[Flag]:
        """Release-level anomalies: going back in time, and revisions of published figures.

        A release identical to one already processed is a redelivery (at-least-once, a rebalance), not
        news: only an old release we have not seen counts as going back in time.
        """
        flags = []
        content = (b.now, hash(tuple(sorted(b.release.turnout.items()))))
        duplicate = content in self.seen
        self.seen.add(content)
        if b.now < self.latest_as_of and not duplicate:
            latest = self._local(b, self.latest_as_of)
            flags.append(
                self._flag(
                    NATIONAL,
                    b.as_of,
                    "time_reversal",
                    "warning",
                    b.now,
                    self.latest_as_of,
                    f"a release as of {self._local(b, b.now):%H:%M} arrived after one as of {latest:%H:%M}; "
                    "the CEC republished an old release or back-dated a new one",
                    {"latest_as_of": latest.isoformat(), "regions_not_seen_before": int(b.fresh.sum())},
                )
            )
        for i in np.flatnonzero(b.revised).tolist():
            change = float(b.value[i] - b.prev[i])
            flags.append(
                self._flag(
                    b.codes[i],
                    b.as_of,
                    "release_revised",
                    "critical" if abs(change) >= self.config.falling_critical_points else "warning",
                    float(b.value[i]),
                    float(b.prev[i]),
                    f"{self._name(b.codes[i])}'s figure as of {self._local(b, b.now):%H:%M} was revised from "
                    f"{b.prev[i]:.2f}% to {b.value[i]:.2f}% after publication",
                    {"previous": float(b.prev[i]), "change_points": round(change, 4), "revision": b.release.revision},
                )
            )
        return flags

    def _value_flags(self, b: _Batch) -> list[Flag]:
        flags = []
        for i in np.flatnonzero(out_of_range(b.value) & b.fresh).tolist():
            bound = 100.0 if b.value[i] > 100 else 0.0
            flags.append(
                self._flag(
                    b.codes[i],
                    b.as_of,
                    "out_of_range",
                    "critical",
                    float(b.value[i]),
                    bound,
                    f"{self._name(b.codes[i])} reported {b.value[i]:.2f}% turnout; a share of the list must lie "
                    f"within 0..100%",
                    {"bound": bound},
                )
            )
        for i in np.flatnonzero(falling(b.prev, b.value) & b.fresh).tolist():
            drop = -float(b.delta[i])
            severity: Severity = "critical" if drop >= self.config.falling_critical_points else "warning"
            since = self._local(b, float(b.prev_t[i]))
            flags.append(
                self._flag(
                    b.codes[i],
                    b.as_of,
                    "falling_turnout",
                    severity,
                    float(b.value[i]),
                    float(b.prev[i]),
                    f"{self._name(b.codes[i])} fell {drop:.2f} points ({b.prev[i]:.2f}% -> {b.value[i]:.2f}%) "
                    f"since {since:%H:%M}; cumulative turnout cannot fall",
                    {"previous": float(b.prev[i]), "drop_points": round(drop, 4), "previous_as_of": since.isoformat()},
                )
            )
        return flags

    def _jump_scores(self, b: _Batch) -> JumpScores:
        """Robust z of every fresh region's rise against the others' (also exported, for the watch room's grid)."""
        cfg = self.config
        hours = b.hours
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(b.fresh & ~b.national & (hours > 0), b.delta / hours, np.nan)
        return cross_sectional_jump(rates, scale_floor=cfg.jump_scale_floor, relative_floor=cfg.jump_relative_floor)

    def _jump_flags(self, b: _Batch, model: _CurveModel | None, scores: JumpScores) -> list[Flag]:
        """Cross-sectional jumps; one that the region's own past curve predicts is noted (info), not alerted.

        No other region rose like it, but a past election shows the region rising like this at this
        hour (2023: North Kazakhstan +14 points 14:00 -> 16:00, as in 2022): when its own curve explains
        more than `habit_share` of the excess over the other regions, it is a known habit, not news.
        """
        cfg = self.config
        hours = b.hours
        expected = scores.peer_median * hours
        with np.errstate(invalid="ignore"):
            hit = (
                (scores.peers >= cfg.jump_min_peers)
                & (scores.z >= cfg.jump_z_warning)
                & (b.delta - expected >= cfg.jump_min_excess_points)
            )
        flags = []
        for i in np.flatnonzero(hit).tolist():
            z = float(scores.z[i])
            severity: Severity = "critical" if z >= cfg.jump_z_critical else "warning"
            message = (
                f"{self._name(b.codes[i])} rose {b.delta[i]:.1f} points in {hours[i]:g} h; other regions rose "
                f"{expected[i]:.1f} (median), {z:.1f} robust SDs above them"
            )
            habit: dict[str, Any] = {}
            excess = float(b.delta[i] - expected[i])
            if model is not None and model.eligible[i] and model.residual[i] < cfg.habit_share * excess:
                severity = "info"
                message += f"; its own past curves expected {model.expected[i]:.1f}%, so this is its habit, not news"
                habit = {"curve_expected": round(float(model.expected[i]), 4)}
            flags.append(
                self._flag(
                    b.codes[i],
                    b.as_of,
                    "cross_sectional_jump",
                    severity,
                    float(b.delta[i]),
                    float(expected[i]),
                    message,
                    habit
                    | {
                        "z": round(z, 2),
                        "hours": round(float(hours[i]), 4),
                        "peers": int(scores.peers[i]),
                        "peer_median_points_per_hour": round(float(scores.peer_median[i]), 4),
                        "peer_sigma_points_per_hour": round(float(scores.peer_scale[i]), 4),
                    },
                )
            )
        return flags

    def _local_hours(self, b: _Batch, seconds: FloatArray) -> FloatArray:
        local = b.release.as_of.astimezone(b.release.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        return (seconds - midnight) / 3600.0

    def _curve_model(self, b: _Batch) -> _CurveModel | None:
        """Each region's expected figure from its own past curve, adjusted to how this day runs."""
        curves = self.curves
        eligible = b.fresh & ~b.national & ~np.isnan(b.prev) & (b.prev > 0)
        if curves is None or eligible.sum() < self.config.jump_min_peers:
            return None
        h0 = self._local_hours(b, b.prev_t)
        h1 = self._local_hours(b, np.full(len(b.codes), b.now))
        s0, s1 = curves.shares(b.codes, h0), curves.shares(b.codes, h1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(eligible & (s0 > 0), s1 / s0, np.nan)
            observed = np.where(eligible, (b.value / b.prev) / ratio, np.nan)
        observed = observed[np.isfinite(observed)]
        if observed.size == 0:
            return None
        day = float(np.median(observed))
        expected, residual = expected_curve_residuals(b.prev, b.value, ratio, day)
        return _CurveModel(eligible & np.isfinite(ratio), ratio, day, expected, residual, curves.elections)

    def _curve_flags(self, b: _Batch, model: _CurveModel | None) -> list[Flag]:
        cfg = self.config
        if model is None:
            return []
        eligible, ratio, day, expected, residual = (
            model.eligible,
            model.ratio,
            model.day,
            model.expected,
            model.residual,
        )
        hours = b.hours
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(eligible & (hours > 0), residual / hours, np.nan)
        scores = expected_curve_jump(rates, scale_floor=cfg.jump_scale_floor)
        with np.errstate(invalid="ignore"):
            hit = (
                (scores.peers >= cfg.jump_min_peers)
                & (scores.z >= cfg.curve_z_warning)
                & (residual >= cfg.curve_min_excess_points)
            )
        flags = []
        for i in np.flatnonzero(hit).tolist():
            z = float(scores.z[i])
            flags.append(
                self._flag(
                    b.codes[i],
                    b.as_of,
                    "expected_curve_jump",
                    "critical" if z >= cfg.curve_z_critical else "warning",
                    float(b.value[i]),
                    float(expected[i]),
                    f"{self._name(b.codes[i])} reached {b.value[i]:.1f}% where its past curves (adjusted to this "
                    f"day) expected {expected[i]:.1f}%: {residual[i]:.1f} points over, {z:.1f} robust SDs "
                    "beyond the other regions",
                    {
                        "z": round(z, 2),
                        "excess_points": round(float(residual[i]), 4),
                        "curve_ratio": round(float(ratio[i]), 4),
                        "day_adjustment": round(day, 4),
                        "learned_from": list(model.learned_from),
                    },
                )
            )
        return flags

    def _after_close_flags(self, b: _Batch) -> list[Flag]:
        cfg, close = self.config, b.release.polls_close
        if close is None or b.now <= close.timestamp():
            return []
        # Only rises measured entirely after closing time: from a figure as of polls_close or later.
        eligible = b.fresh & ~b.national & (b.prev_t >= close.timestamp())
        rise = np.where(eligible, b.delta, np.nan)
        hit = growth_after_close(rise, cfg.after_close_allowance_points)
        with np.errstate(invalid="ignore"):
            info = eligible & ~hit & (rise > cfg.after_close_info_points)
        flags = []
        for i in np.flatnonzero(hit | info).tolist():
            severity: Severity = (
                "info" if info[i] else "critical" if rise[i] >= cfg.after_close_critical_points else "warning"
            )
            flags.append(
                self._flag(
                    b.codes[i],
                    b.as_of,
                    "growth_after_close",
                    severity,
                    float(rise[i]),
                    cfg.after_close_allowance_points,
                    f"{self._name(b.codes[i])} rose {rise[i]:.2f} points after polls closed at "
                    f"{self._local(b, close.timestamp()):%H:%M} ({b.prev[i]:.2f}% -> {b.value[i]:.2f}%); late "
                    f"reports explain up to {cfg.after_close_allowance_points:g}",
                    {"previous": float(b.prev[i]), "polls_close": close.isoformat()},
                )
            )
        return flags

    def _national_flags(self, b: _Batch) -> list[Flag]:
        cfg, registered = self.config, b.release.registered
        where = np.flatnonzero(b.national & b.fresh).tolist()
        if not where or not registered:
            return []
        regions = ~b.national
        weights = np.array([registered.get(c, np.nan) for c in b.codes], dtype=np.float64)
        total = float(sum(v for c, v in registered.items() if c != NATIONAL))
        mean, coverage = weighted_national(b.value[regions], weights[regions], total)
        i = where[0]
        gap = float(b.value[i] - mean)
        if coverage < cfg.national_min_coverage or abs(gap) < cfg.national_warning_points:
            return []
        return [
            self._flag(
                NATIONAL,
                b.as_of,
                "national_inconsistency",
                "critical" if abs(gap) >= cfg.national_critical_points else "warning",
                float(b.value[i]),
                mean,
                f"the national figure {b.value[i]:.2f}% differs by {gap:+.2f} points from its regions' "
                f"registered-weighted mean {mean:.2f}%",
                {"gap_points": round(gap, 4), "coverage": round(coverage, 4)},
            )
        ]
