"""Observer counts as state: each station's latest count per hour, and per-region sums of them.

A `StationLedger` lives where a station's counts arrive (partitioned by station); it turns counts
into per-region statistic *deltas* (so a corrected or later count replaces, never doubles, the
station's contribution) and compares commission figures with tallies. `RegionSums` lives with the
election's releases and adds the deltas up. Splitting it this way lets 100,000 stations spread over
many partitions while each region's estimate is assembled in one place.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.alert_book import AlertBook
from detectors.config import DetectorConfig
from detectors.observer_estimates import STATS, protocol_above_tally
from turnout_watch.core.records import Flag

FloatArray = npt.NDArray[np.float64]
#: A count is compared with the release "as of" the next full hour if observed at most this long before.
BUCKET_WINDOW_SECONDS = 1800.0

Bucket = tuple[str, str, float]  # (election, region code, hour as unix time)


def hour_bucket(observed_at: float, window: float = BUCKET_WINDOW_SECONDS) -> float | None:
    """The full hour a count observed at `observed_at` (unix time) speaks for, or None if too early.

    Releases are "as of" full hours; a count taken at 11:50 speaks for 12:00, one taken at 11:05 for
    no release (45 minutes of voting are missing). Offsets of Kazakhstan's zones are whole hours.
    """
    bucket = math.ceil(observed_at / 3600.0) * 3600.0
    return bucket if bucket - observed_at <= window else None


@dataclass(frozen=True)
class Count:
    """One observer report, already validated at the intake."""

    election: str
    station: str
    region: str  # ISO code
    observed_at: float
    registered: int
    voted: int
    source: str  # "tally" | "commission"

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Count:
        return cls(
            election=str(obj["election"]),
            station=str(obj["station"]),
            region=str(obj["region_code"]),
            observed_at=datetime.fromisoformat(obj["observed_at"]).timestamp(),
            registered=int(obj["registered"]),
            voted=int(obj["voted"]),
            source=str(obj["source"]),
        )


@dataclass(frozen=True)
class StationComparison:
    """A station where the commission's figure and the observer's tally cover the same hour."""

    election: str
    station: str
    region: str
    bucket: float
    registered: int
    tally: int
    commission: int


@dataclass
class LedgerUpdate:
    deltas: dict[Bucket, FloatArray] = field(default_factory=dict)
    comparisons: list[StationComparison] = field(default_factory=list)
    ignored: int = 0  # counts too early for any hour, or older than one already held


def _row(count: Count) -> FloatArray:
    x, y = float(count.registered), float(count.voted)
    return np.array([1.0, x, y, x * x, x * y, y * y])


class StationLedger:
    """The latest count per (election, station, hour, source)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str, float, str], Count] = {}

    def add(self, counts: Iterable[Count]) -> LedgerUpdate:
        update = LedgerUpdate()
        deltas: dict[Bucket, FloatArray] = defaultdict(lambda: np.zeros(len(STATS)))
        touched: set[tuple[str, str, float]] = set()
        for count in counts:
            bucket = hour_bucket(count.observed_at)
            if bucket is None:
                update.ignored += 1
                continue
            key = (count.election, count.station, bucket, count.source)
            old = self.latest.get(key)
            if old is not None and (old.observed_at > count.observed_at or old == count):
                update.ignored += 1
                continue
            self.latest[key] = count
            touched.add((count.election, count.station, bucket))
            if count.source != "tally":
                continue
            region_key = (count.election, count.region, bucket)
            deltas[region_key] += _row(count)
            if old is not None:
                deltas[region_key] -= _row(old)
        update.deltas = {k: v for k, v in deltas.items() if v.any()}
        for election, station, bucket in sorted(touched):
            tally = self.latest.get((election, station, bucket, "tally"))
            commission = self.latest.get((election, station, bucket, "commission"))
            if tally and commission:
                update.comparisons.append(
                    StationComparison(
                        election, station, tally.region, bucket, tally.registered, tally.voted, commission.voted
                    )
                )
        return update


def flag_stations(
    comparisons: list[StationComparison], min_voters: float, min_share: float
) -> list[tuple[StationComparison, float]]:
    """The comparisons where the protocol is above the tally, with the excess in voters."""
    if not comparisons:
        return []
    commission = np.array([c.commission for c in comparisons], dtype=np.float64)
    tally = np.array([c.tally for c in comparisons], dtype=np.float64)
    registered = np.array([c.registered for c in comparisons], dtype=np.float64)
    hit, excess = protocol_above_tally(commission, tally, registered, min_voters=min_voters, min_share=min_share)
    return [(comparisons[i], float(excess[i])) for i in np.flatnonzero(hit).tolist()]


class RegionSums:
    """Per (election, region, hour) sums of the observed stations' latest tallies."""

    def __init__(self) -> None:
        self.sums: dict[Bucket, FloatArray] = {}

    def apply(self, deltas: Mapping[Bucket, FloatArray]) -> set[Bucket]:
        for key, delta in deltas.items():
            self.sums[key] = self.sums.get(key, np.zeros(len(STATS))) + np.asarray(delta, dtype=np.float64)
        return set(deltas)

    def at(self, election: str, bucket: float, codes: Iterable[str]) -> FloatArray:
        """(regions, 6) statistics for `codes` at one hour (zeros where nothing was observed)."""
        zero = np.zeros(len(STATS))
        return np.array([self.sums.get((election, code, bucket), zero) for code in codes]).reshape(-1, len(STATS))


class StationChecker:
    """Protocol-above-tally flags for the stations one ledger holds, one flag per anomaly."""

    def __init__(self, names: Mapping[str, str] | None = None, config: DetectorConfig | None = None) -> None:
        self.names = dict(names or {})
        self.config = config or DetectorConfig()
        self.alerts = AlertBook()

    def check(self, comparisons: list[StationComparison], tz: Any = None) -> list[Flag]:
        cfg = self.config
        raised = []
        for c, excess in flag_stations(comparisons, cfg.protocol_min_voters, cfg.protocol_min_share):
            share = excess / c.registered if c.registered else float("inf")
            when = datetime.fromtimestamp(c.bucket, tz=tz)
            raised.append(
                Flag(
                    c.election,
                    self.names.get(c.region, c.region),
                    c.region,
                    when.isoformat(),
                    "protocol_above_tally",
                    "critical" if share >= cfg.protocol_critical_share else "warning",
                    float(c.commission),
                    float(c.tally),
                    f"station {c.station}: the commission reports {c.commission} voters by {when:%H:%M}, "
                    f"the observer counted {c.tally} ({excess:+.0f}, {100 * share:.1f}% of {c.registered} on the list)",
                    {"excess_voters": int(excess), "registered": c.registered},
                    station=c.station,
                )
            )
        published, _ = self.alerts.admit(raised, [c.station for c in comparisons], ("protocol_above_tally",))
        return published
