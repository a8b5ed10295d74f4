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
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.alert_book import AlertBook
from detectors.config import DetectorConfig
from detectors.observer_estimates import STATS
from detectors.rules.observers import ProtocolAboveTally, StationBatch
from turnout_watch.core.records import Flag, ObserverCount

FloatArray = npt.NDArray[np.float64]
#: A count is compared with the release "as of" the next full hour if observed at most this long before.
BUCKET_WINDOW_SECONDS = 1800.0

Bucket = tuple[str, str, float]  # (election, region code, hour as unix time)


def hour_bucket(observed_at: float, window: float = BUCKET_WINDOW_SECONDS, offset: float = 0.0) -> float | None:
    """The full hour a count observed at `observed_at` (unix time) speaks for, or None if too early.

    Releases are "as of" full hours; a count taken at 11:50 speaks for 12:00, one taken at 11:05 for
    no release (45 minutes of voting are missing). The hour is the next full hour on the station's own
    clock (`offset`: its UTC offset in seconds, as its `observed_at` states it), returned as unix time,
    so it is matched to a release by the absolute instant, whatever clock the release is stated in.
    """
    bucket = math.ceil((observed_at + offset) / 3600.0) * 3600.0 - offset
    return bucket if bucket - observed_at <= window else None


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


def _row(count: ObserverCount) -> FloatArray:
    x, y = float(count.registered), float(count.voted)
    return np.array([1.0, x, y, x * x, x * y, y * y])


def _same_figures(old: ObserverCount, new: ObserverCount) -> bool:
    """The count again (a redelivery or a resend), whatever its report_id or when it arrived."""
    return (
        old.region_code == new.region_code
        and old.observed_at == new.observed_at
        and old.registered == new.registered
        and old.voted == new.voted
    )


class StationLedger:
    """The latest count per (election, station, hour, source)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str, float, str], ObserverCount] = {}

    def add(self, counts: Iterable[ObserverCount]) -> LedgerUpdate:
        update = LedgerUpdate()
        deltas: dict[Bucket, FloatArray] = defaultdict(lambda: np.zeros(len(STATS)))
        touched: set[tuple[str, str, float]] = set()
        for count in counts:
            local = count.observed_at.utcoffset()
            bucket = hour_bucket(count.observed_ts, offset=local.total_seconds() if local else 0.0)
            if bucket is None:
                update.ignored += 1
                continue
            key = (count.election, count.station, bucket, count.source)
            old = self.latest.get(key)
            if old is not None and (old.observed_at > count.observed_at or _same_figures(old, count)):
                update.ignored += 1
                continue
            self.latest[key] = count
            touched.add((count.election, count.station, bucket))
            if count.source != "tally":
                continue
            region_key = (count.election, count.region_code, bucket)
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
                        election, station, tally.region_code, bucket, tally.registered, tally.voted, commission.voted
                    )
                )
        return update


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
        rule = ProtocolAboveTally()
        raised = rule.flags(StationBatch(comparisons, self.names, tz), self.config)
        published, _ = self.alerts.admit(raised, [c.station for c in comparisons], (rule.detector,))
        return published
