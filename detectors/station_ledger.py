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
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.alert_book import AlertBook
from detectors.config import DetectorConfig
from detectors.observer_estimates import STATS
from detectors.rules.observers import ProtocolAboveTally, StationBatch, flag_stations
from turnout_watch.core.records import Flag, ObserverCount, Source, StationRow

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
    """The latest count per (station, hour, source) of one election, held in columns.

    A count held as objects (a key tuple, a `StationRow`, its floats and strings) costs about 500 bytes;
    an India-sized day is 11 million counts of one election, all on the worker that holds it (5.9 GB).
    Here a station and a region are small integers (their names kept once), a (station, hour, source)
    is a cell of a flat integer table (a row of `_stride` cells per station, one per (hour, source)
    slot) pointing at a row, and a row's figures sit in typed arrays: about 60 bytes a count. The rules
    are the same as on objects (`_order`, `_same_figures`); `latest` shows the held counts as
    `StationRow`s.
    """

    def __init__(self, election: str) -> None:
        self.election = election
        self._station_ids: dict[str, int] = {}
        self._stations: list[str] = []
        self._region_ids: dict[str, int] = {}
        self._regions: list[str] = []
        self._slot_ids: dict[tuple[float, Source], int] = {}  # (hour, source) -> cell of a station's row
        self._slots: list[tuple[float, Source]] = []
        self._stride = 32  # cells a station has: the slots of a day (hours x 2 sources) fit; grown if not
        self._cells = array("i")  # station * _stride + slot -> row, -1 for none
        self._observed = array("d")
        self._offset = array("d")
        self._received = array("d")
        self._registered = array("q")
        self._voted = array("q")
        self._region = array("i")

    def __len__(self) -> int:
        return len(self._observed)

    @property
    def latest(self) -> Mapping[tuple[str, float, str], StationRow]:
        """The held counts by (station, hour, source), as rows (a view; built on reading)."""
        return _Latest(self)

    def _station(self, name: str) -> int:
        station = self._station_ids[name] = len(self._stations)
        self._stations.append(name)
        self._cells.extend(array("i", [-1]) * self._stride)
        return station

    def _slot(self, key: tuple[float, Source]) -> int:
        slot = self._slot_ids[key] = len(self._slots)
        self._slots.append(key)
        if slot >= self._stride:  # a day of more slots than planned: every station's row widens
            stride, wider = self._stride, self._stride * 2
            cells = array("i", [-1]) * (len(self._stations) * wider)
            for station in range(len(self._stations)):
                cells[station * wider : station * wider + stride] = self._cells[
                    station * stride : (station + 1) * stride
                ]
            self._cells, self._stride = cells, wider
        return slot

    def _region_id(self, code: str) -> int:
        region = self._region_ids[code] = len(self._regions)
        self._regions.append(code)
        return region

    def _held(self, station: int, slot: int, row: int) -> StationRow:
        return StationRow(
            self._stations[station],
            self._regions[self._region[row]],
            self._slots[slot][1],
            self._observed[row],
            self._offset[row],
            self._received[row],
            self._registered[row],
            self._voted[row],
        )

    def add(self, rows: Iterable[StationRow | ObserverCount]) -> LedgerUpdate:
        """Take counts (in any order, any number of times); return what changed."""
        update = LedgerUpdate()
        sums: dict[Bucket, list[float]] = {}
        election = self.election
        width = len(STATS)
        station_ids, slot_ids, region_ids = self._station_ids, self._slot_ids, self._region_ids
        for item in rows:
            row = item if isinstance(item, StationRow) else StationRow.of(item)
            bucket = hour_bucket(row.observed_ts, offset=row.offset)
            if bucket is None:
                update.ignored += 1
                continue
            update.regions.add(row.region_code)
            station = station_ids.get(row.station)
            if station is None:
                station = self._station(row.station)
            key = (bucket, row.source)
            slot = slot_ids.get(key)
            if slot is None:
                slot = self._slot(key)
            cell = station * self._stride + slot
            at = self._cells[cell]
            old = self._held(station, slot, at) if at >= 0 else None
            if old is not None and (
                _order(old) > _order(row) or (_order(old) == _order(row) and _same_figures(old, row))
            ):
                update.ignored += 1
                continue
            region = region_ids.get(row.region_code)
            if region is None:
                region = self._region_id(row.region_code)
            if at < 0:
                at = self._cells[cell] = len(self._observed)
                self._observed.append(row.observed_ts)
                self._offset.append(row.offset)
                self._received.append(row.received_ts)
                self._registered.append(row.registered)
                self._voted.append(row.voted)
                self._region.append(region)
            else:
                self._observed[at], self._offset[at], self._received[at] = row.observed_ts, row.offset, row.received_ts
                self._registered[at], self._voted[at], self._region[at] = row.registered, row.voted, region
            if old is not None and _same_figures(old, row):  # the same figures again, observed later
                update.ignored += 1
                continue
            other = slot_ids.get((bucket, "commission" if row.source == "tally" else "tally"))
            other_at = -1 if other is None else self._cells[station * self._stride + other]
            if other_at >= 0:  # compared after every change, in arrival order
                tally_at, commission_at = (at, other_at) if row.source == "tally" else (other_at, at)
                update.comparisons.append(
                    StationComparison(
                        election,
                        row.station,
                        self._regions[self._region[tally_at]],
                        bucket,
                        self._registered[tally_at],
                        self._voted[tally_at],
                        self._voted[commission_at],
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


class _Latest(Mapping[tuple[str, float, str], StationRow]):
    """A ledger's held counts as a mapping (tests and benchmarks read it; the detectors do not)."""

    def __init__(self, ledger: StationLedger) -> None:
        self.ledger = ledger

    def __len__(self) -> int:
        return len(self.ledger)

    def __iter__(self) -> Iterator[tuple[str, float, str]]:
        ledger = self.ledger
        for cell, at in enumerate(ledger._cells):
            if at >= 0:
                station, slot = divmod(cell, ledger._stride)
                bucket, source = ledger._slots[slot]
                yield (ledger._stations[station], bucket, source)

    def __getitem__(self, key: tuple[str, float, str]) -> StationRow:
        ledger = self.ledger
        station = ledger._station_ids.get(key[0])
        slot = ledger._slot_ids.get((key[1], key[2]))  # type: ignore[arg-type]
        if station is None or slot is None or ledger._cells[station * ledger._stride + slot] < 0:
            raise KeyError(key)
        return ledger._held(station, slot, ledger._cells[station * ledger._stride + slot])


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
