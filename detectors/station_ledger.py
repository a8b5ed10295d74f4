"""Observer counts as state: each station's latest count per hour, and per-region sums of them.

The election's tracker holds one `StationLedger` (every count of an election reaches the worker that
holds the election, re-keyed by the observer-counts agent: `core.records.StationCounts`). The ledger
keeps the latest count per (station, hour, source) and turns each change into per-region statistic
*deltas*, so a corrected count replaces the station's contribution and the same count again — a
resend, a redelivered batch, a replayed day — changes nothing. The state is a function of the set of
counts seen, not of how often or in which order they came (a later observation wins, whatever
arrived last), which is what lets a worker rebuild it after a restart and get the same numbers.
`RegionSums` adds the deltas up; `StationChecker` compares commission figures with tallies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.alert_book import AlertBook
from detectors.config import DetectorConfig
from detectors.observer_estimates import STATS
from detectors.rules.observers import ProtocolAboveTally, StationBatch, flag_stations
from turnout_watch.core.records import Flag, ObserverCount, StationRow

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
    ignored: int = 0  # counts too early for any hour, or not newer than the one already held
    regions: set[str] = field(default_factory=set)  # regions whose counts came in (for "last count" series)


def _row(row: StationRow) -> tuple[float, ...]:
    x, y = float(row.registered), float(row.voted)
    return (1.0, x, y, x * x, x * y, y * y)


def _order(row: StationRow) -> tuple[float, float, int, int, str]:
    """Of two counts of a station's hour, the later observation wins; then the later arrival; then, for
    two different counts with the same times, the figures (an arbitrary but fixed choice, so the winner
    does not depend on which of the two arrived last: a redelivery or a rebuild would flip it)."""
    return (row.observed_ts, row.received_ts, row.registered, row.voted, row.region_code)


def _same_figures(old: StationRow, new: StationRow) -> bool:
    return old.region_code == new.region_code and old.registered == new.registered and old.voted == new.voted


class StationLedger:
    """The latest count per (station, hour, source) of one election."""

    def __init__(self, election: str) -> None:
        self.election = election
        self.latest: dict[tuple[str, float, str], StationRow] = {}

    def add(self, rows: Iterable[StationRow | ObserverCount]) -> LedgerUpdate:
        """Take counts (in any order, any number of times); return what changed."""
        update = LedgerUpdate()
        sums: dict[Bucket, list[float]] = {}
        election = self.election
        width = len(STATS)
        for item in rows:
            row = item if isinstance(item, StationRow) else StationRow.of(item)
            bucket = hour_bucket(row.observed_ts, offset=row.offset)
            if bucket is None:
                update.ignored += 1
                continue
            update.regions.add(row.region_code)
            key = (row.station, bucket, row.source)
            old = self.latest.get(key)
            if old is not None and (
                _order(old) > _order(row) or (_order(old) == _order(row) and _same_figures(old, row))
            ):
                update.ignored += 1
                continue
            if old is not None and _same_figures(old, row):  # the same figures again, observed later
                self.latest[key] = row
                update.ignored += 1
                continue
            self.latest[key] = row
            tally = row if row.source == "tally" else self.latest.get((row.station, bucket, "tally"))
            commission = row if row.source == "commission" else self.latest.get((row.station, bucket, "commission"))
            if tally is not None and commission is not None:  # compared after every change, in arrival order
                update.comparisons.append(
                    StationComparison(
                        election,
                        row.station,
                        tally.region_code,
                        bucket,
                        tally.registered,
                        tally.voted,
                        commission.voted,
                    )
                )
            if row.source != "tally":
                continue
            delta = sums.setdefault((election, row.region_code, bucket), [0.0] * width)
            for i, v in enumerate(_row(row)):
                delta[i] += v
            if old is not None:
                before = sums.setdefault((election, old.region_code, bucket), [0.0] * width)
                for i, v in enumerate(_row(old)):
                    before[i] -= v
        update.deltas = {k: np.array(v) for k, v in sums.items() if any(v)}
        return update


class RegionSums:
    """Per (election, region, hour) sums of the observed stations' latest tallies."""

    def __init__(self) -> None:
        self.sums: dict[Bucket, FloatArray] = {}
        self.hours: set[tuple[str, float]] = set()  # (election, hour) of every bucket in `sums`

    def apply(self, deltas: Mapping[Bucket, FloatArray]) -> set[Bucket]:
        for key, delta in deltas.items():
            self.sums[key] = self.sums.get(key, np.zeros(len(STATS))) + np.asarray(delta, dtype=np.float64)
            self.hours.add((key[0], key[2]))
        return set(deltas)

    def has(self, election: str, bucket: float) -> bool:
        """Whether any region of `election` has observed statistics at hour `bucket` (else `at` is all zeros)."""
        return (election, bucket) in self.hours

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
        """Flags of `comparisons`, taken one by one in the order they came (a station's later comparison
        can resolve its earlier anomaly): the same flags however the counts were cut into batches."""
        rule, cfg = ProtocolAboveTally(), self.config
        raised = rule.flags(StationBatch(comparisons, self.names, tz), cfg)
        hits = [id(c) for c, _ in flag_stations(comparisons, cfg.protocol_min_voters, cfg.protocol_min_share)]
        flag_of = dict(zip(hits, raised, strict=True))
        published: list[Flag] = []
        for comparison in comparisons:
            flag = flag_of.get(id(comparison))
            admitted, _ = self.alerts.admit([] if flag is None else [flag], (comparison.station,), (rule.detector,))
            published += admitted
        return published
