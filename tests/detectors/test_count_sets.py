"""Observer counts as a set: the tracker's numbers and flags do not depend on delivery.

The observer path is at-least-once and spread over workers: a count may come twice (a resend, a
redelivered batch), interleaved with other stations' counts in any way (late counts, a rebuild sorting
two topics by time) — each station's own counts in the order it sent them, as its partition keeps
them — and in batches cut anywhere. Each (station, hour, source) keeps its latest observation, so a
tracker fed the same set of counts any of these ways holds the same stations and sums, estimates the
same turnout and raises the same flags as one clean pass.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.config import DetectorConfig
from detectors.tracker import ProcessResult, Release, TurnoutTracker
from turnout_watch.core.records import Source, StationRow

TZ = timezone(timedelta(hours=6))
NOON = datetime(2022, 11, 20, 12, tzinfo=TZ)
HOURS = (NOON, NOON + timedelta(hours=1))
NAMES = {"KZ-10": "Abai Region", "KZ-11": "Akmola Region"}
#: Official figures well above what the counts below can estimate for KZ-10 (so it is flagged when
#: enough stations are observed), about what they estimate for KZ-11.
OFFICIAL = {"KZ-10": 75.0, "KZ-11": 52.0}
STATIONS = 16
#: Three stations make an estimate here (ten in production), so that small sets of counts are judged too.
CONFIG = DetectorConfig(observed_min_stations=3)


def release(hour: datetime) -> Release:
    return Release("e", hour, hour + timedelta(minutes=5), OFFICIAL)


@st.composite
def station_rows(draw: st.DrawFn, station: int) -> StationRow:
    """A count of a station, on a coarse clock so that counts of the station's hour often share their
    observation time (and sometimes their arrival time too)."""
    hour = draw(st.sampled_from(HOURS)).timestamp()
    observed = hour - 60.0 * draw(st.sampled_from((0, 5, 20, 40)))  # 40 minutes early: no hour's count
    registered = draw(st.integers(800, 1200))
    source: Source = draw(st.sampled_from(("tally", "tally", "commission")))
    return StationRow(
        f"S{station:02d}",
        "KZ-10" if station % 2 else "KZ-11",
        source,
        observed,
        6 * 3600.0,
        observed + 60.0 * draw(st.sampled_from((1, 2, 30))),
        registered,
        draw(st.integers(350, min(registered, 700))),
    )


@st.composite
def count_sets(draw: st.DrawFn) -> list[StationRow]:
    """One to four counts of each observed station (some stations are not observed at all)."""
    unobserved = draw(st.sets(st.integers(0, STATIONS - 1), max_size=STATIONS - 1))
    counts = [
        row
        for station in range(STATIONS)
        if station not in unobserved
        for row in draw(st.lists(station_rows(station), min_size=1, max_size=4))
    ]
    return list(dict.fromkeys(counts))  # a set: the repeats are the deliveries' business


COUNT_SETS = count_sets()


@st.composite
def deliveries(draw: st.DrawFn, counts: list[StationRow]) -> list[list[StationRow]]:
    """The counts in some order, some of them more than once, cut into batches; some batches twice."""
    again = draw(st.lists(st.sampled_from(counts), max_size=len(counts)))
    shuffled = draw(st.permutations(counts + again))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(shuffled) - 1)), max_size=6)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    redelivered = draw(st.sets(st.integers(0, len(batches) - 1)))
    return [b for i, batch in enumerate(batches) for b in ([batch, batch] if i in redelivered else [batch])]


def clean(counts: list[StationRow]) -> list[StationRow]:
    """One pass in the order the counts were taken (then received), each once."""
    return sorted(counts, key=lambda r: (r.observed_ts, r.received_ts))


def tracker() -> TurnoutTracker:
    return TurnoutTracker("e", NAMES, CONFIG, zone=TZ)


def judged(result: ProcessResult) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """What a result says, comparable between runs: its flags (as a set: two stations' flags of one batch
    may come in either order) and its estimates."""
    estimates = [(e.region_code, e.as_of, e.official, e.estimate, e.se, e.stations) for e in result.estimates]
    return sorted((f.to_dict() for f in result.flags), key=lambda f: json.dumps(f, sort_keys=True)), sorted(estimates)


def held(t: TurnoutTracker) -> tuple[dict[Any, StationRow], dict[Any, list[float]]]:
    """The tracker's observer state: each station's count per hour, and the regions' sums."""
    sums = {key: value.tolist() for key, value in t.observed.sums.items() if value.any()}
    return dict(t.stations.latest), sums


@settings(deadline=None, max_examples=150)
@given(st.data(), COUNT_SETS)
def test_counts_before_the_release_any_delivery_the_same_judgement(
    data: st.DataObject, counts: list[StationRow]
) -> None:
    """Counts come in (any order, repeats, any batches, redelivered batches), then the releases: the
    releases are judged against the same estimates, with the same flags, as after one clean pass."""
    once = tracker()
    once.add_counts(clean(counts))
    expected = [judged(once.process(release(hour))) for hour in HOURS]
    again = tracker()
    for batch in data.draw(deliveries(counts)):
        again.add_counts(batch)
    assert held(again) == held(once)
    assert [judged(again.process(release(hour))) for hour in HOURS] == expected


@st.composite
def interleavings(draw: st.DrawFn, counts: list[StationRow]) -> list[StationRow]:
    """The counts as a worker can receive them: stations interleaved at will, but each station's counts in
    the order they were sent (one station's counts share a partition, and Kafka keeps a partition's order
    through redelivery and rebuilds), some sent again at any point after the first time."""
    ordered = clean(counts)
    slots = draw(st.permutations([row.station for row in ordered]))
    queues: dict[str, list[StationRow]] = {}
    for row in ordered:
        queues.setdefault(row.station, []).append(row)
    out = [queues[station].pop(0) for station in slots]
    for repeat in draw(st.lists(st.sampled_from(counts), max_size=len(counts))):
        first = out.index(repeat)
        out.insert(draw(st.integers(first + 1, len(out))), repeat)
    return out


@settings(deadline=None, max_examples=150)
@given(st.data(), COUNT_SETS)
def test_counts_after_the_release_any_interleaving_the_same_flags_and_estimates(
    data: st.DataObject, counts: list[StationRow]
) -> None:
    """The releases came first; the counts come in one batch, stations interleaved any way, with repeats:
    the same estimates and the same flags (official above observed, protocol above tally) as one clean
    pass. A station's own counts keep their order: its later comparison may resolve an earlier anomaly."""
    once = tracker()
    for hour in HOURS:
        once.process(release(hour))
    expected = judged(once.add_counts(clean(counts)))
    again = tracker()
    for hour in HOURS:
        again.process(release(hour))
    assert judged(again.add_counts(data.draw(interleavings(counts)))) == expected
    assert held(again) == held(once)


@settings(deadline=None, max_examples=150)
@given(st.data(), COUNT_SETS)
def test_station_flags_do_not_depend_on_where_batches_are_cut(data: st.DataObject, counts: list[StationRow]) -> None:
    """Offline `detect` cuts the counts between releases, a worker wherever its batches end: a station's
    flags are judged count by count, so the cuts change nothing."""
    ordered = clean(counts)
    once = tracker()
    once.process(release(HOURS[0]))
    expected = [f.to_dict() for f in once.add_counts(ordered).flags if f.station is not None]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(ordered) - 1)), max_size=8)))
    again = tracker()
    again.process(release(HOURS[0]))
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(ordered)], strict=True):
        got += [f.to_dict() for f in again.add_counts(ordered[a:b]).flags if f.station is not None]
    assert got == expected


@settings(deadline=None, max_examples=100)
@given(st.data(), COUNT_SETS)
def test_a_redelivered_batch_changes_nothing_and_raises_nothing(data: st.DataObject, counts: list[StationRow]) -> None:
    """Batches as the agent takes them, each followed by its redelivery (a crash before the commit):
    the same flags and estimates as delivered once, and the redelivery itself says nothing new."""
    cut = data.draw(st.integers(0, len(counts)))
    batches = [counts[:cut], counts[cut:]]
    once, twice = tracker(), tracker()
    for t in (once, twice):
        t.process(release(HOURS[0]))
    for batch in batches:
        first = judged(once.add_counts(batch))
        assert judged(twice.add_counts(batch)) == first
        redelivered = twice.add_counts(data.draw(st.permutations(batch)))
        assert (redelivered.flags, redelivered.estimates) == ([], [])
        assert held(twice) == held(once)
    later = release(HOURS[1])
    assert judged(twice.process(later)) == judged(once.process(later))


def test_the_properties_can_fail_a_ledger_that_adds() -> None:
    """The same count twice in one pass would double a station if counts were added, not replaced: the
    sums above would then differ, which is what the properties check."""
    row = StationRow("S01", "KZ-10", "tally", NOON.timestamp() - 300, 6 * 3600.0, NOON.timestamp() - 240, 1000, 500)
    t = tracker()
    t.add_counts([row, row])
    t.add_counts([row])
    [(key, sums)] = held(t)[1].items()
    assert key == ("e", "KZ-10", NOON.timestamp()) and sums[0] == 1.0
