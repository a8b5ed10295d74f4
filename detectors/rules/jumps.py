"""Jumps: a region's rise compared with the other regions' rises, and with its own past curve.

Two rules on the same rises. The cross-sectional jump asks "did it rise far more than the others
did at this release?"; the expected-curve jump asks "did it rise far more than its own past days
say it should by this hour?". Each one tempers the other: a cross-sectional jump that the region's
own curve predicts is its habit, noted but not alerted. A cross-sectional jump is also judged
against the region's own pace earlier that day: a region that has voted late all day keeps rising
while the early ones slow down, which is its pace, not news; a surge changes the region's pace
where the others' did not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.robust import RobustScores, median, robust_scores
from detectors.types import Batch, shared
from turnout_watch.core.records import Flag, Severity

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def cross_sectional_jump(rates: FloatArray, *, scale_floor: float = 0.5, relative_floor: float = 0.1) -> RobustScores:
    """Score each region's rise against the other regions' rises at the same release.

    Turnout grows at very different speeds through the day (+5 to +25 points between 12:00 and 14:00 in
    2023), so no fixed threshold works; but at one release all regions share the hour, the weather and
    the national mood. A region that rose far above all the others (2022: Turkistan +37 points
    10:00 -> 12:00 while the country rose 15) is what ballot stuffing or an invented figure looks like.
    Input is points per hour, so regions whose previous figure is older are compared fairly.
    Leave-one-out median and MAD keep the suspect itself (and a second outlier) from hiding the jump.
    Where in the day it is sets the scale's floor: in the morning rush (median +8 points/h) a spread
    under 10 % of the median is noise, in the quiet evening `scale_floor` (points/h) keeps +0.3 from
    scoring a z of 30.
    """
    return robust_scores(rates, scale_floor=scale_floor, relative_floor=relative_floor)


Phase = tuple[str, float]  # ("open", hours of voting so far) | ("last hours", hours of voting in the interval) | ...


def phases(b: Batch) -> list[tuple[Phase, list[int]]]:
    """Regions of a batch grouped by the phase of their own polling day over the interval they rose in.

    A region closed throughout the interval, one whose close falls inside it (its last open hour, as
    the 22:00 capital-time release held for the west until 2024) and one open throughout are in
    different phases; open regions are further split by the hours of voting they have had. Regions
    whose polling hours are unknown share one phase. Only fresh, sub-national regions with a rise.
    Computed once per batch (both jump scores read it); the lists are not to be changed.
    """
    cached = b.shared.get(phases)
    if cached is None:
        cached = b.shared[phases] = _phases(b)
    return cast("list[tuple[Phase, list[int]]]", cached)


def _phases(b: Batch) -> list[tuple[Phase, list[int]]]:
    start = b.since
    with np.errstate(invalid="ignore"):
        rising = np.flatnonzero(b.fresh & ~b.national & (b.now > start)).tolist()
    if not rising:
        return []
    voting = b.voting_hours(start).tolist()  # Python floats: no numpy call per region
    span = ((b.now - start) / 3600.0).tolist()
    elapsed = b.voting_hours(b.opens).tolist()
    return group_phases(rising, voting, span, elapsed)


def group_phases(
    rising: list[int], voting: list[float], span: list[float], elapsed: list[float]
) -> list[tuple[Phase, list[int]]]:
    """`phases` of the regions `rising`, given each region's hours of voting in the interval, the
    interval's hours and its hours of voting since the polls opened (also used by detectors.stacked)."""
    groups: dict[Phase, list[int]] = {}
    for i in rising:
        hours = voting[i]
        if math.isnan(hours):
            key: Phase = ("open", -1.0)  # polling hours unknown: as if open, all together
        elif hours <= 0:
            key = ("closed", 0.0)
        elif hours < span[i] - 1e-6:
            key = ("last hours", round(hours, 1))
        else:
            key = ("open", float(round(elapsed[i])))
        groups.setdefault(key, []).append(i)
    return list(groups.items())


def judged_groups(b: Batch, config: DetectorConfig) -> list[list[int]]:
    """The groups of regions judged against each other at this release (see `jump_scores`).

    Regions open throughout the interval are split by hours of voting only when every such group has
    more than `jump_min_peers` regions; otherwise they are one group. Groups of `jump_min_peers` or
    fewer are left out.
    """
    groups = phases(b)
    open_groups = [members for key, members in groups if key[0] == "open"]
    if not all(len(members) > config.jump_min_peers for members in open_groups):
        merged = [i for members in open_groups for i in members]
        groups = [(key, members) for key, members in groups if key[0] != "open"] + [(("open", -1.0), merged)]
    return [members for _, members in groups if len(members) > config.jump_min_peers]


def _scored_by_group(b: Batch, config: DetectorConfig, values: FloatArray, *, relative_floor: float) -> RobustScores:
    n = len(b.codes)
    z, median, scale = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    rising = sum(len(members) for _, members in phases(b))
    peers = np.full(n, rising, dtype=np.int64)  # unscored: all that rose, as robust_scores counts them
    for members in judged_groups(b, config):
        scores = cross_sectional_jump(
            values[members], scale_floor=config.jump_scale_floor, relative_floor=relative_floor
        )
        z[members], median[members] = scores.z, scores.peer_median
        scale[members], peers[members] = scores.peer_scale, scores.peers
    return RobustScores(z=z, peer_median=median, peer_scale=scale, peers=peers)


def rise_rates(b: Batch) -> FloatArray:
    """Each region's rise in points per hour since its previous figure was first reported."""
    hours = (b.now - b.since) / 3600.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(hours > 0, b.delta / hours, np.nan))


@shared
def pace_change_scores(b: Batch, config: DetectorConfig) -> RobustScores:
    """Robust z of every fresh region's change of pace against the others' changes, in the same groups.

    The change of pace is its rate over this interval minus its own pace before it (`Batch.pace`: the
    points per hour of the last interval its figure moved in), points per hour. Regions' curves differ
    in shape (2022's regions voted later in the day than 2023's): in the afternoon early regions slow
    down while a late one keeps its pace, so its rise stands out against the others' rises although it
    only continues what it has done all day. A surge (ballots or an invented figure added at one
    release) changes the region's own pace by as many points as it adds to its rise, and stands out
    against the others' changes as well. Regions without a known pace are not scored:
    at the first rise of the day (10:00 -> 12:00) no region has one. The pace since the polls opened
    is no substitute: on 20 Nov 2022 the regions' 07:00 -> 10:00 paces spread so widely (robust SD
    4 points/h) that Turkistan's reported jump, +9.6 points/h over its opening pace, scored only 2.6.
    """
    rates = rise_rates(b)
    return _scored_by_group(b, config, rates - b.pace, relative_floor=0.0)


@shared
def jump_scores(b: Batch, config: DetectorConfig) -> RobustScores:
    """Robust z of every fresh region's rise against the others' in the same phase (see `phases`).

    Rates are points per hour since the region's figure was first reported (a stale, repeated figure
    does not make the next rise look twice as fast). Regions open throughout the interval are split by
    hours of voting only when every such group has more than `jump_min_peers` regions to judge itself
    by; otherwise they are judged together (an hour more or less of voting moves a rate far less than
    regions differ: 2022 and 2023 flag the same regions with the west in or out). A closed or
    last-hours phase too small to judge itself by is not scored (NaN): the closing rule judges it.
    """
    return _scored_by_group(b, config, rise_rates(b), relative_floor=config.jump_relative_floor)


def expected_curve_residuals(
    previous: FloatArray, current: FloatArray, region_ratio: FloatArray, national_ratio: float
) -> tuple[FloatArray, FloatArray]:
    """Expected figure and residual (points) of each region against its own past curve.

    `region_ratio` is how much each region's turnout multiplied between the two hours on past days;
    `national_ratio` scales all of them by how this day differs from past days as a whole (the
    nation's actual ratio over its expected one), so a slow or fast day does not flag every region.
    """
    with np.errstate(invalid="ignore"):
        expected = np.minimum(previous * region_ratio * national_ratio, 100.0)
    return expected, current - expected


def expected_curve_jump(residual_rates: FloatArray, *, scale_floor: float = 0.5) -> RobustScores:
    """Score each region's excess over its own expected curve against the other regions' excesses.

    A region's increment far above what its own past curves predict (after the day-level adjustment)
    is a surge even when the increment itself looks ordinary next to other regions: a region that
    usually votes late rising like an early one. Robust scoring against the other regions' residuals
    at the same release keeps a day when all curves were off from flagging everyone.
    Input is residual points per hour.
    """
    return robust_scores(residual_rates, scale_floor=scale_floor)


@dataclass(frozen=True)
class CurveModel:
    """Each region's expected figure at this release from its own past curve, adjusted to the day."""

    eligible: BoolArray
    ratio: FloatArray  # how much each region multiplied between the two hours on past days
    day: float  # this day's pace relative to past days (median over regions)
    expected: FloatArray
    residual: FloatArray
    learned_from: tuple[str, ...]


@shared
def curve_model(b: Batch, config: DetectorConfig) -> CurveModel | None:
    """Each region's expected figure from its own past curve, adjusted to how this day runs.

    None without past curves or with fewer than `jump_min_peers` regions to judge the day by.
    """
    curves = b.curves
    eligible = b.fresh & ~b.national & ~np.isnan(b.prev) & (b.prev > 0)
    if curves is None or eligible.sum() < config.jump_min_peers:
        return None
    n = len(b.codes)
    h0 = b.local_hours(b.since)  # each region's own local hours (curves are learned in them too)
    h1 = b.local_hours(np.full(n, b.now))
    both = curves.shares(b.codes + b.codes, np.concatenate([h0, h1]))  # one pass for both hours
    s0, s1 = both[:n], both[n:]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(eligible & (s0 > 0), s1 / s0, np.nan)
        observed = np.where(eligible, (b.value / b.prev) / ratio, np.nan)
    observed = observed[np.isfinite(observed)]
    if observed.size == 0:
        return None
    day = median(observed)
    expected, residual = expected_curve_residuals(b.prev, b.value, ratio, day)
    return CurveModel(eligible & np.isfinite(ratio), ratio, day, expected, residual, curves.elections)


@shared
def curve_jump_scores(b: Batch, config: DetectorConfig) -> RobustScores | None:
    """Robust z of every region's excess over its own past curve, per hour, against the other regions'
    (see `expected_curve_jump`); None without a curve model."""
    model = curve_model(b, config)
    if model is None:
        return None
    hours = (b.now - b.since) / 3600.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(model.eligible & (hours > 0), model.residual / hours, np.nan)
    return expected_curve_jump(rates, scale_floor=config.jump_scale_floor)


class CrossSectionalJump:
    """A rise far above the other regions' (see `cross_sectional_jump`); one its own pace or curve explains is info.

    It alerts only when the rise is also an outlier once each region is held to its own pace: its
    change of pace must be `jump_z_warning` robust SDs above the other regions' changes
    (`pace_change_scores`). A region that rose 3 points an hour before and 3.4 now, while the others
    slowed from 3 to 0.5, keeps its own pace: noted as info, not alerted. Where its pace is unknown
    or too few regions have one, the rise alone decides, as before.
    No other region rose like it, but a past election shows the region rising like this at this
    hour (2023: North Kazakhstan +14 points 14:00 -> 16:00, as in 2022): when its own curve explains
    more than `habit_share` of the excess over the other regions, it is a known habit, not news.
    """

    detector = "cross_sectional_jump"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        cfg = config
        scores = jump_scores(b, cfg)
        hours = (b.now - b.since) / 3600.0
        expected = scores.peer_median * hours
        with np.errstate(invalid="ignore"):
            hit = (
                (scores.peers >= cfg.jump_min_peers)
                & (scores.z >= cfg.jump_z_warning)
                & (b.delta - expected >= cfg.jump_min_excess_points)
            )
        if not hit.any():
            return []
        model = curve_model(b, cfg)
        paced = pace_change_scores(b, cfg)
        pace = b.pace
        flags = []
        for i in np.flatnonzero(hit).tolist():
            z = float(scores.z[i])
            severity: Severity = "critical" if z >= cfg.jump_z_critical else "warning"
            message = (
                f"{b.name(b.codes[i])} rose {b.delta[i]:.1f} points in {hours[i]:g} h; other regions rose "
                f"{expected[i]:.1f} (median), {z:.1f} robust SDs above them"
            )
            habit: dict[str, Any] = {}
            excess = float(b.delta[i] - expected[i])
            pace_z = float(paced.z[i])
            if np.isfinite(pace_z) and paced.peers[i] >= cfg.jump_min_peers:
                habit = {
                    "own_pace_points_per_hour": round(float(pace[i]), 4),
                    "pace_change_z": round(pace_z, 2),
                    "peer_median_pace_change": round(float(paced.peer_median[i]), 4),
                }
                if pace_z < cfg.jump_z_warning:
                    severity = "info"
                    message += (
                        f"; but it rose {pace[i]:.1f} points/h before and {b.delta[i] / hours[i]:.1f} now, a change "
                        f"of pace {pace_z:.1f} robust SDs from the others' ({paced.peer_median[i]:+.1f}/h median): "
                        "its own pace, not news"
                    )
            if model is not None and model.eligible[i] and model.residual[i] < cfg.habit_share * excess:
                severity = "info"
                message += f"; its own past curves expected {model.expected[i]:.1f}%, so this is its habit, not news"
                habit |= {"curve_expected": round(float(model.expected[i]), 4)}
            flags.append(
                b.flag(
                    b.codes[i],
                    self.detector,
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


class ExpectedCurveJump:
    """A region far above its own past curve (see `expected_curve_jump`), scored against the others' excesses.

    Needs past curves (`Batch.curves`); the flag names the elections they were learned from.
    """

    detector = "expected_curve_jump"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        cfg = config
        model, scores = curve_model(b, cfg), curve_jump_scores(b, cfg)
        if model is None or scores is None:
            return []
        with np.errstate(invalid="ignore"):
            hit = (
                (scores.peers >= cfg.jump_min_peers)
                & (scores.z >= cfg.curve_z_warning)
                & (model.residual >= cfg.curve_min_excess_points)
            )
        flags = []
        for i in np.flatnonzero(hit).tolist():
            z = float(scores.z[i])
            flags.append(
                b.flag(
                    b.codes[i],
                    self.detector,
                    "critical" if z >= cfg.curve_z_critical else "warning",
                    float(b.value[i]),
                    float(model.expected[i]),
                    f"{b.name(b.codes[i])} reached {b.value[i]:.1f}% where its past curves (adjusted to this "
                    f"day) expected {model.expected[i]:.1f}%: {model.residual[i]:.1f} points over, {z:.1f} "
                    "robust SDs beyond the other regions",
                    {
                        "z": round(z, 2),
                        "excess_points": round(float(model.residual[i]), 4),
                        "curve_ratio": round(float(model.ratio[i]), 4),
                        "day_adjustment": round(model.day, 4),
                        "learned_from": list(model.learned_from),
                    },
                )
            )
        return flags
