"""Seeded synthetic election days, clean or with labelled anomalies, for an honest evaluation.

How a clean day is made (every number comes from the seed):
- Regions and registered voters: the 20 regions of the shipped 2023 day, registered voters scaled by
  a factor in 0.95..1.05 each.
- Final turnout: a national level in 45..80 %, each region that level plus its own offset from the
  real days (cities vote less) plus noise (sd 4 points), clipped to 15..97 %.
- Era: even seeds fall between mid-2022 and February 2024, when the west (Aktobe, Atyrau, West
  Kazakhstan, Mangystau, Kyzylorda) was an hour behind the capital; odd seeds from March 2024 on, one
  zone. Which is which comes from the gazetteer's IANA zones and tzdata on the date, nothing else.
- Curve shape, in the region's own local hours from 07:00 to its close at 20:00: every region draws
  its own, independently, from the pool of the 40 real regional shapes of 2022 and 2023 (each one's
  share of its closing figure, from 07:00 local; each hourly step pulled within 1.5 robust SDs of all
  regions' steps, so the anomalies observers reported on those days are not replayed as normal): two
  shapes mixed with a random weight, every hourly step multiplied by a log-normal factor (sd 0.15).
- A shape keeps the commission's clock it was voted on (`_on_clock`): on the real two-zone days the
  west, an hour behind the capital, had at each release about the share of its final the other regions
  had at the same moment, not at the same local hour (root-mean-square gap 0.05 against 0.10 in 2022,
  0.05 against 0.09 in 2023; the other regions spread 0.07 and 0.03 among themselves; the parser
  corpus's 10 January 2021, not a template day: 0.05 against 0.11), while it opened an hour later and
  voted an hour longer; on one clock (15 March 2026, corpus) the west's share at 12:00 and 16:00 is
  the others' (0.53 and 0.88 against 0.53 and 0.89). So a shape moves by the difference of the two
  regions' lags behind the commission's clock through the day, its opening and its close staying at
  07:00 and 20:00 local: an eastern shape drawn for the west runs an hour ahead on the west's clock, a
  western one drawn for the east (or for any region after March 2024) an hour behind on its own.
- After a region's polls close only late reports arrive: the first release after its close adds
  |N(0, 0.1)| points (the nation gained 0.10-0.12 on the real days).
- Releases at 10, 12, ..., 22 on the capital's clock, published 5 or 10 minutes later: in the
  two-zone era the 20:00 release catches the west at 19:00 local and the 22:00 release holds its last
  hour; on one two-zone day in three the 20:00 release repeats the west's 18:00 figures (as June 2022's
  did). The national figure is the registered-weighted mean of the regions, all rounded to 2 decimals
  as the CEC does.

Anomalies (one per day, labelled in the header under `synthetic.anomalies`):
`surge` (from release k on, a region carries m extra points: ballot stuffing or an invented figure),
`fall` (a region's figure at k is m below its previous one), `over_100` (100 + m), `after_close`
(m extra points in the 22:00 release), `national` (the national figure off its regions by m),
`revision` (release k republished 50 minutes later with one region changed by m), `time_reversal`
(after release k, new figures stamped "as of" two releases back).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from detectors.curves import robust_steps
from detectors.history import past_day
from detectors.robust import MAD_TO_SIGMA
from turnout_watch.core.dayfile import DayFile, Election, load_day, write_day
from turnout_watch.core.gazetteer import NATIONAL, default_gazetteer
from turnout_watch.core.settings import SHIPPED_ELECTIONS

HOURS = (10, 12, 14, 16, 18, 20, 22)
CLOSE_INDEX = 5  # 20:00
TZ = "Asia/Almaty"

#: Magnitude bands per anomaly kind, in points; the evaluation reports recall per band.
BANDS: dict[str, tuple[tuple[float, float], ...]] = {
    "surge": ((2.0, 5.0), (5.0, 10.0), (10.0, 20.0)),
    "fall": ((0.01, 0.1), (0.1, 1.0), (1.0, 5.0)),
    "over_100": ((0.01, 1.0), (1.0, 10.0)),
    "after_close": ((0.3, 0.5), (0.5, 1.0), (1.0, 3.0)),
    "national": ((0.2, 0.5), (0.5, 1.0), (1.0, 3.0)),
    "revision": ((0.05, 0.5), (0.5, 5.0)),
    "time_reversal": ((0.0, 0.0),),
    "official_above": ((1.0, 3.0), (3.0, 6.0), (6.0, 12.0)),
    "protocol": ((1.0, 3.0), (3.0, 15.0)),  # percent of the station's list
}
#: Kinds that need observer counts in the day.
OBSERVER_KINDS = ("official_above", "protocol")
KINDS = tuple(BANDS)


@dataclass(frozen=True)
class Anomaly:
    kind: str
    region: str  # ISO code; KZ for the national figure and whole releases
    release: int  # index into HOURS of the first release that shows it
    magnitude: float
    band: str
    spread: float = float("nan")  # robust SD (points) of the clean regions' increments at that release

    @property
    def sigmas(self) -> float:
        return self.magnitude / self.spread if self.spread > 0 else float("nan")

    @property
    def as_of_hour(self) -> int:
        return HOURS[self.release]


#: Local hours of a synthetic region's polling day: its shape is a share of its closing figure on them.
LOCAL_GRID = np.arange(7.0, 21.0)  # 07:00 .. 20:00
#: Until 1 March 2024 Kazakhstan's west was an hour behind the capital; from then on, one zone.
TWO_ZONE_START, ONE_ZONE_START = date(2022, 7, 1), date(2024, 3, 4)


def election_date(seed: int) -> date:
    """Even seeds: a day of the two-zone era (after the 2022 regions, before March 2024); odd: after."""
    if seed % 2 == 0:
        return TWO_ZONE_START + timedelta(days=(seed // 2) % 600)
    return ONE_ZONE_START + timedelta(days=(seed // 2) % 3000)


def era(election: Election) -> str:
    """ "1 zone", "2 zones", ...: how many UTC offsets the day's regions close on (IANA zones + tzdata)."""
    offsets = {closes.utcoffset() for code, (_, closes) in election.polls().items() if code != NATIONAL}
    return f"{len(offsets)} zone" + ("s" if len(offsets) > 1 else "")


@dataclass(frozen=True)
class Template:
    """What clean days are drawn from: the real days' regional curve shapes and regions."""

    codes: tuple[str, ...]
    registered: dict[str, int]
    shapes: np.ndarray  # (real regional curves, LOCAL_GRID): share of the closing figure, local hours
    offsets: np.ndarray  # each region's closing turnout minus the nation's final, averaged over the real days
    lags: np.ndarray  # per shape: hours its region's clock was behind the commission's on its day (the west's 1)

    @classmethod
    def from_shipped(cls, folder: Path = SHIPPED_ELECTIONS) -> Template:
        days = [load_day(folder / "kz-2022-11-20-presidential.jsonl"), load_day(folder / "kz-2023-03-19-majilis.jsonl")]
        gazetteer = default_gazetteer()
        registered = {gazetteer.resolve(n).code: v for n, v in days[1].election.registered().items()}
        codes = tuple(sorted(registered))
        shapes, offsets, lags = [], [], []
        for day in days:
            past = past_day(day)
            opens = day.election.polls_open.hour + day.election.polls_open.minute / 60
            close = day.election.polls_close.hour + day.election.polls_close.minute / 60
            curves, finals = [], []
            for code in codes:
                hours = np.asarray(past.hours_of(code))
                values = np.asarray(past.turnout[code])
                # the figure at its own close: the first release at or after it (the west's 22:00 until 2024)
                final = float(values[np.searchsorted(hours, close)])
                voting = hours < close
                x = np.concatenate([[opens], hours[voting], [close]])
                y = np.concatenate([[0.0], values[voting] / final, [1.0]])
                curves.append(np.interp(LOCAL_GRID, x, y))
                finals.append(final)
                lags.append(past.hours[0] - hours[0])
            # the real days hold reported anomalies (Turkistan 10:00 -> 12:00 in 2022): not for a clean template
            shapes.append(robust_steps(np.array(curves)[:, 1:], 1.5))
            offsets.append(np.array(finals) - past.turnout[NATIONAL][-1])
        pool = np.concatenate(shapes)
        return cls(
            codes,
            registered,
            np.concatenate([np.zeros((len(pool), 1)), pool], axis=1),
            np.mean(offsets, axis=0),
            np.array(lags),
        )


def _on_clock(shapes: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Shapes (rows on LOCAL_GRID) moved `shift` hours earlier on the local clock through the day.

    `shift` is how many hours further behind the commission's clock the new region is than the
    shape's own (1: an eastern shape for the west until 2024; -1: a western one for the east). Turnout
    follows the commission's clock (the module docstring has the evidence), so at local hour t the new
    region shows the share the shape had at t + shift; the opening and the close stay where they are:
    the first two or three hours and the last one or two stretch or shrink to take up the hour.
    """
    opens, close = float(LOCAL_GRID[0]), float(LOCAL_GRID[-1])
    out = np.empty_like(shapes)
    for i, d in enumerate(shift.tolist()):
        start, end = opens + 2 + max(0.0, -d), close - 1 - max(0.0, d)
        source = np.interp(LOCAL_GRID, [opens, start, end, close], [opens, start + d, end + d, close])
        out[i] = np.interp(source, LOCAL_GRID, shapes[i])
    return out


def _clean_values(
    template: Template,
    rng: np.random.Generator,
    local_hours: np.ndarray,
    close: float = 20.0,
    lags: np.ndarray | None = None,
) -> np.ndarray:
    """(regions, releases) clean turnout; `local_hours[i, k]` is release k on region i's own clock.

    Each region's shape is its own draw from the pool of real shapes, kept on the commission's clock
    (`_on_clock`; `lags[i]`: hours region i's clock is behind the commission's, none by default); a
    release at or after its close shows its closing figure, the first after it plus late reports.
    """
    n = len(template.codes)
    level = rng.uniform(45, 80)
    final = np.clip(level + template.offsets + rng.normal(0, 4, n), 15, 97)
    pool = template.shapes
    first, second = rng.integers(len(pool), size=n), rng.integers(len(pool), size=n)
    w = rng.uniform(0, 1, (n, 1))
    lags = np.zeros(n) if lags is None else lags
    one = _on_clock(pool[first], lags - template.lags[first])
    other = _on_clock(pool[second], lags - template.lags[second])
    share = w * one + (1 - w) * other
    steps = np.maximum(np.diff(share, axis=1), 0) * rng.lognormal(0, 0.15, (n, share.shape[1] - 1))
    curve = np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1)
    curve /= curve[:, -1:]
    late = np.abs(rng.normal(0, 0.1, n))
    values = np.empty(local_hours.shape)
    for i in range(n):
        values[i] = final[i] * np.interp(local_hours[i], LOCAL_GRID, curve[i])
        values[i, local_hours[i] > close] += late[i]
    return values


def _inject(values: np.ndarray, kind: str, k: int, i: int, m: float) -> None:
    if kind == "surge":
        values[i, k:] = np.minimum(values[i, k:] + m, 99.9)
    elif kind == "fall":
        values[i, k] = values[i, k - 1] - m
    elif kind == "over_100":
        values[i, k] = 100.0 + m
    elif kind == "after_close":
        values[i, k] += m


def make_day(
    seed: int, kind: str | None = None, template: Template | None = None, observers: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One synthetic day (header, events), clean when `kind` is None; deterministic in `seed`.

    With `observers` > 0, that many stations (spread over regions by registered voters) report a
    tally at each release hour and their commission's figure; see `_observer_events`.
    """
    template = template or Template.from_shipped()
    rng = np.random.default_rng(seed)
    day = election_date(seed)
    codes = list(template.codes)
    gazetteer = default_gazetteer()
    tz = ZoneInfo(TZ)
    capital = [datetime.combine(day, time(h), tzinfo=tz) for h in HOURS]
    zones = [gazetteer.get(c).zone for c in codes]
    local_hours = np.array([[_hour(t.astimezone(zone)) for t in capital] for zone in zones])
    lags = np.array(HOURS[0]) - local_hours[:, 0]  # hours each region's clock is behind the capital's
    values = _clean_values(template, rng, local_hours, lags=lags)
    behind = np.flatnonzero(local_hours[:, CLOSE_INDEX] < HOURS[CLOSE_INDEX])  # regions on a clock behind the capital's
    stale = behind.size > 0 and rng.uniform() < 1 / 3
    if stale:  # the 20:00 release repeats their 18:00 figures; 22:00 brings the hours since
        values[behind, CLOSE_INDEX] = values[behind, CLOSE_INDEX - 1]
    registered = {c: int(template.registered[c] * rng.uniform(0.95, 1.05)) for c in codes}
    anomaly = None
    if kind is not None:
        band_index = int(rng.integers(len(BANDS[kind])))
        low, high = BANDS[kind][band_index]
        magnitude = round(float(rng.uniform(low, high)), 2) if high > 0 else 0.0
        k = {"after_close": 6, "over_100": int(rng.integers(2, 6)), "time_reversal": int(rng.integers(2, 6))}.get(
            kind, int(rng.integers(1, 6))
        )
        i = int(rng.integers(len(codes)))
        region = NATIONAL if kind in ("national", "time_reversal") else codes[i]
        # a time reversal shows as the republished release's own time, two releases back
        steps = values[:, k] - values[:, k - 1]
        spread = round(float(MAD_TO_SIGMA * np.median(np.abs(steps - np.median(steps)))), 3)
        release_index = k - 2 if kind == "time_reversal" else k
        anomaly = Anomaly(kind, region, release_index, magnitude, f"{low:g}-{high:g}", spread)
        clean = values.copy()
        _inject(values, "surge" if kind == "official_above" else kind, k, i, magnitude)
    else:
        clean = values.copy()
    values = np.round(values, 2)
    weights = np.array([registered[c] for c in codes], dtype=float)
    national = np.round(weights @ values / weights.sum(), 2)
    if anomaly and anomaly.kind == "national":
        national[anomaly.release] = round(national[anomaly.release] + anomaly.magnitude * rng.choice([-1, 1]), 2)
    election = f"synthetic-{seed}" + (f"-{kind}" if kind else "-clean")
    published_after = timedelta(minutes=int(rng.choice([5, 10])))

    def release(k: int, published: datetime, turnout: np.ndarray, nat: float, revision: bool = False) -> dict[str, Any]:
        as_of = datetime.combine(day, time(HOURS[k]), tzinfo=tz)
        out = {
            "type": "cec_release",
            "election": election,
            "as_of": as_of.isoformat(),
            "published_at": published.isoformat(),
            "turnout_pct": {c: float(v) for c, v in zip(codes, turnout, strict=True)} | {"Kazakhstan": float(nat)},
        }
        return out | ({"revision": 1} if revision else {})

    events = []
    for k in range(len(HOURS)):
        as_of = datetime.combine(day, time(HOURS[k]), tzinfo=tz)
        events.append(release(k, as_of + published_after, values[:, k], national[k]))
    if anomaly and anomaly.kind == "revision":
        changed = values[:, anomaly.release].copy()
        i = codes.index(anomaly.region)
        changed[i] = round(changed[i] + anomaly.magnitude, 2)
        published = datetime.fromisoformat(events[anomaly.release]["published_at"]) + timedelta(minutes=50)
        events.insert(
            anomaly.release + 1, release(anomaly.release, published, changed, national[anomaly.release], True)
        )
    if anomaly and anomaly.kind == "time_reversal":
        # the next figures, stamped with a time two releases back (a mistyped or back-dated "as of")
        old, after = anomaly.release, anomaly.release + 2
        published = datetime.fromisoformat(events[after]["published_at"]) + timedelta(minutes=5)
        ahead = min(after + 1, len(HOURS) - 1)
        events.insert(after + 1, release(old, published, values[:, ahead], national[ahead]))
    if observers:
        counts = _observer_events(rng, election, codes, registered, clean, day, observers, anomaly, zones)
        events = _merge_by_time(events, counts)
    header = {
        "type": "election",
        "election": election,
        "name": "Synthetic election day",
        "date": day.isoformat(),
        "timezone": TZ,
        "polls_open": "07:00",
        "polls_close": "20:00",
        "regions": [{"region": c, "registered": registered[c]} for c in codes],
        "synthetic": {"seed": seed, "anomalies": [asdict(anomaly)] if anomaly else [], "stale_west_20": stale},
    }
    return header, events


def _observer_events(
    rng: np.random.Generator,
    election: str,
    codes: list[str],
    registered: dict[str, int],
    clean: np.ndarray,
    day: date,
    observers: int,
    anomaly: Anomaly | None,
    zones: list[ZoneInfo],
) -> list[dict[str, Any]]:
    """Tally and commission counts at observed stations, following the *clean* regional curves.

    Stations: registered voters log-normal around 1,200 (100..3,500); each station's turnout is its
    region's clean figure plus its own offset (normal, sd 12 % of the figure, narrower near 100 %:
    mean-preserving, so the official figure is what a census of stations would give) - the spread the
    estimator's interval must reflect. Each release hour (10..20) the observer counts within 15
    minutes before the hour (tally: the true count plus or minus a few voters) and notes the
    commission's figure (the true count plus or minus 1); reports arrive 1-20 minutes later, one in 20 is never sent. An
    `official_above` anomaly leaves the counts clean (the official figure was inflated); a `protocol`
    anomaly inflates one station's commission figure by m % of its list from release k on. Times are
    stated on the station's own clock (its region's zone).
    """
    tz = ZoneInfo(TZ)
    weights = np.array([registered[c] for c in codes], dtype=float)
    per_region = np.maximum(1, np.round(observers * weights / weights.sum())).astype(int)
    events: list[dict[str, Any]] = []
    protocol_station = None
    if anomaly and anomaly.kind == "protocol":
        i = codes.index(anomaly.region)
        protocol_station = f"{codes[i][3:]}-{int(rng.integers(per_region[i])):04d}"
    for r, code in enumerate(codes):
        n = per_region[r]
        size = np.clip(rng.lognormal(np.log(1200), 0.4, n), 100, 3500).astype(int)
        spread = rng.normal(0, 1, n)
        for k in range(CLOSE_INDEX + 1):
            level = clean[r, k]
            # symmetric (mean-preserving) spread: 12 % of the level, narrower near 100 %
            sigma = min(0.12 * level, 0.35 * (100.0 - level))
            turnout = np.clip(level + sigma * spread, 0.0, 100.0) / 100.0
            true = np.round(size * turnout).astype(int)
            tally = np.clip(true + np.round(rng.normal(0, 2, n)).astype(int), 0, size)
            commission = np.clip(true + np.round(rng.normal(0, 1, n)).astype(int), 0, size)
            taken = rng.uniform(0, 15, n)
            delay = rng.uniform(1, 20, n)
            sent = rng.uniform(0, 1, n) > 0.05
            if protocol_station and anomaly and k >= anomaly.release and protocol_station.startswith(code[3:] + "-"):
                sent[int(protocol_station.split("-")[1])] = True  # the inflated protocol is always reported
            for j in np.flatnonzero(sent).tolist():
                station = f"{code[3:]}-{j:04d}"
                observed = datetime.combine(day, time(HOURS[k]), tzinfo=tz) - timedelta(minutes=float(taken[j]))
                observed = observed.astimezone(zones[r])
                received = observed + timedelta(minutes=float(delay[j]))
                voted_commission = int(commission[j])
                if station == protocol_station and anomaly and k >= anomaly.release:
                    voted_commission = min(int(size[j]), voted_commission + round(anomaly.magnitude / 100 * size[j]))
                for source, voted in (("tally", int(tally[j])), ("commission", voted_commission)):
                    events.append(
                        {
                            "type": "observer_count",
                            "election": election,
                            "station": station,
                            "region": code,
                            "observer": f"obs-{station}",
                            "observed_at": observed.isoformat(timespec="seconds"),
                            "received_at": received.isoformat(timespec="seconds"),
                            "registered": int(size[j]),
                            "voted": voted,
                            "source": source,
                        }
                    )
    return events


def _hour(when: datetime) -> float:
    return when.hour + when.minute / 60


def _merge_by_time(releases: list[dict[str, Any]], counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All events in the order the watch room learned of them (releases keep their relative order)."""
    keyed = [(datetime.fromisoformat(e["published_at"]), 0, n, e) for n, e in enumerate(releases)]
    keyed += [(datetime.fromisoformat(e["received_at"]), 1, n, e) for n, e in enumerate(counts)]
    return [e for *_, e in sorted(keyed, key=lambda t: t[:3])]


def write_days(folder: Path, days: int, clean: int, seed: int = 0, observers: int = 0) -> Iterator[Path]:
    """`days` anomalous days (kinds in turn) and `clean` clean days, files named by seed and kind.

    Without observers, the kinds that need observer counts are left out.
    """
    template = Template.from_shipped()
    folder.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in KINDS if observers or k not in OBSERVER_KINDS]
    plan = [kinds[i % len(kinds)] for i in range(days)] + [None] * clean
    for offset, kind in enumerate(plan):
        header, events = make_day(seed + offset, kind, template, observers)
        path = folder / f"{header['election']}.jsonl"
        write_day(path, header, events)
        yield path


def labels(day: DayFile) -> list[Anomaly]:
    synthetic = day.election.raw.get("synthetic") or {}
    return [Anomaly(**a) for a in synthetic.get("anomalies", [])]


def dump_labels(anomalies: list[Anomaly]) -> str:
    return json.dumps([asdict(a) for a in anomalies])
