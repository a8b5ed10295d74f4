"""What observers counted versus what the CEC published (the estimator is `detectors.observer_estimates`).

- Per region, the official turnout against the observers' ratio estimate at the same hour (2011:
  official turnout exceeded what observers saw at the same stations by up to 21 points).
- Per station, the commission's figure against the observer's own tally (2019: protocol copies
  differed from official figures by 20,000 votes in Almaty).

The tracker runs the first on each hour that has both a release and observed stations; the station
checker beside the ledger runs the second on each station with both counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Protocol

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.observer_estimates import RatioEstimate, student_threshold
from detectors.types import Scope
from turnout_watch.core.records import Flag

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def official_above_observed(official: FloatArray, estimated: RatioEstimate) -> tuple[FloatArray, FloatArray]:
    """Gap (points) of the official figure over the observers' estimate, and that gap in standard errors.

    Only an official figure *above* what observers saw is evidence of padding; a figure below is not
    flagged (observers' stations may simply be busier). NaN where there is no estimate.
    """
    gap = np.asarray(official, dtype=np.float64) - estimated.estimate
    with np.errstate(invalid="ignore", divide="ignore"):
        z = gap / np.maximum(estimated.se, 1e-9)
    return gap, z


@dataclass(frozen=True)
class ObservedBatch(Scope):
    """One hour's official figures beside the observers' estimate for the same regions (region i: `codes[i]`)."""

    codes: list[str]
    official: FloatArray
    stats: FloatArray  # (regions, 6) sufficient statistics of the observed stations (`observer_estimates.STATS`)
    estimate: RatioEstimate
    counted: BoolArray  # enough observed stations to judge the region (`observed_min_stations`)


class OfficialAboveObserved:
    """An official figure above the observers' estimate by `observed_min_gap_points` and by enough errors.

    "Enough" is `observed_z_warning` (critical: `observed_z_critical` and `observed_critical_gap_points`)
    widened to the Student-t for the number of stations, since the standard error is estimated from
    the same few stations (see `student_threshold`).
    """

    detector = "official_above_observed"

    def flags(self, ob: ObservedBatch, config: DetectorConfig) -> list[Flag]:
        cfg, stats, estimate = config, ob.stats, ob.estimate
        gap, z = official_above_observed(ob.official, estimate)
        low, high = estimate.interval()
        dof = stats[:, 0] - 1
        warn_at = student_threshold(cfg.observed_z_warning, dof)
        critical_at = student_threshold(cfg.observed_z_critical, dof)
        with np.errstate(invalid="ignore"):
            hit = ob.counted & (gap >= cfg.observed_min_gap_points) & (z >= warn_at)
        flags = []
        for i in np.flatnonzero(hit).tolist():
            critical = gap[i] >= cfg.observed_critical_gap_points and z[i] >= critical_at[i]
            flags.append(
                ob.flag(
                    ob.codes[i],
                    self.detector,
                    "critical" if critical else "warning",
                    float(ob.official[i]),
                    float(estimate.estimate[i]),
                    f"{ob.name(ob.codes[i])}: official {ob.official[i]:.2f}% is {gap[i]:.1f} points above what "
                    f"observers counted at {int(stats[i, 0])} stations ({estimate.estimate[i]:.1f}%, 95% CI "
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
        return flags


def protocol_above_tally(
    commission: FloatArray,
    tally: FloatArray,
    registered: FloatArray,
    *,
    min_voters: float = 10.0,
    min_share: float = 0.02,
) -> tuple[BoolArray, FloatArray]:
    """Stations whose commission figure exceeds the observer's own count by more than counting error.

    Both counts are of the same thing at about the same time; an observer can miss a few voters, so
    the commission may be above by `min_voters` or `min_share` of the list before it counts. Returns
    the mask and the excess in voters.
    """
    excess = np.asarray(commission, dtype=np.float64) - np.asarray(tally, dtype=np.float64)
    allowed = np.maximum(min_voters, min_share * np.asarray(registered, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return excess > allowed, excess


class StationPair(Protocol):
    """A station where the commission's figure and the observer's tally cover the same hour."""

    @property
    def election(self) -> str: ...
    @property
    def station(self) -> str: ...
    @property
    def region(self) -> str: ...  # ISO code
    @property
    def bucket(self) -> float: ...  # the hour, unix time
    @property
    def registered(self) -> int: ...
    @property
    def tally(self) -> int: ...
    @property
    def commission(self) -> int: ...


@dataclass(frozen=True)
class StationBatch:
    """Stations with both counts for an hour, as a station ledger found them (`StationComparison`)."""

    comparisons: Sequence[StationPair]
    names: Mapping[str, str]
    tz: tzinfo | None = None  # the zone of the flags' "as_of"


def flag_stations(
    comparisons: Sequence[StationPair], min_voters: float, min_share: float
) -> list[tuple[StationPair, float]]:
    """The comparisons where the protocol is above the tally, with the excess in voters."""
    if not comparisons:
        return []
    commission = np.array([c.commission for c in comparisons], dtype=np.float64)
    tally = np.array([c.tally for c in comparisons], dtype=np.float64)
    registered = np.array([c.registered for c in comparisons], dtype=np.float64)
    hit, excess = protocol_above_tally(commission, tally, registered, min_voters=min_voters, min_share=min_share)
    return [(comparisons[i], float(excess[i])) for i in np.flatnonzero(hit).tolist()]


class ProtocolAboveTally:
    """A commission figure above the observer's tally (see `protocol_above_tally`), flagged on the station.

    Critical from `protocol_critical_share` of the station's list.
    """

    detector = "protocol_above_tally"

    def flags(self, batch: StationBatch, config: DetectorConfig) -> list[Flag]:
        cfg = config
        flags = []
        for c, excess in flag_stations(batch.comparisons, cfg.protocol_min_voters, cfg.protocol_min_share):
            share = excess / c.registered if c.registered else float("inf")
            when = datetime.fromtimestamp(c.bucket, tz=batch.tz)
            flags.append(
                Flag(
                    c.election,
                    batch.names.get(c.region, c.region),
                    c.region,
                    when.isoformat(),
                    self.detector,
                    "critical" if share >= cfg.protocol_critical_share else "warning",
                    float(c.commission),
                    float(c.tally),
                    f"station {c.station}: the commission reports {c.commission} voters by {when:%H:%M}, "
                    f"the observer counted {c.tally} ({excess:+.0f}, {100 * share:.1f}% of {c.registered} on the list)",
                    {"excess_voters": int(excess), "registered": c.registered},
                    station=c.station,
                )
            )
        return flags
