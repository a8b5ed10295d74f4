"""Observer counts as state: each station's latest count per hour, the per-region sums, tallies vs protocols."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detectors.station_ledger import RegionSums, StationChecker, StationComparison, StationLedger, hour_bucket
from turnout_watch.core.records import ObserverCount, Source, StationRow

TZ = timezone(timedelta(hours=6))
NOON = datetime(2022, 11, 20, 12, tzinfo=TZ)
BUCKET = NOON.timestamp()


def count(
    station: str,
    voted: int,
    minutes_before_noon: int = 10,
    *,
    registered: int = 1000,
    region: str = "KZ-10",
    source: Source = "tally",
    report: str = "r1",
    received_after: int = 1,
) -> ObserverCount:
    observed = NOON - timedelta(minutes=minutes_before_noon)
    received = observed + timedelta(minutes=received_after)
    return ObserverCount("e", station, region, region, observed, received, registered, voted, source, report_id=report)


def row(registered: float, voted: float) -> list[float]:
    """One station's six statistics: n, x, y, x^2, xy, y^2."""
    return [1.0, registered, voted, registered**2, registered * voted, voted**2]


def test_hour_bucket_is_the_next_full_hour_within_half_an_hour() -> None:
    assert hour_bucket((NOON - timedelta(minutes=10)).timestamp()) == BUCKET
    assert hour_bucket((NOON - timedelta(minutes=30)).timestamp()) == BUCKET
    assert hour_bucket((NOON - timedelta(minutes=31)).timestamp()) is None  # 31 minutes of voting missing
    assert hour_bucket(BUCKET) == BUCKET  # on the hour: that hour
    assert hour_bucket(BUCKET + 1) is None  # a second past: the next hour is 59:59 away
    assert hour_bucket(BUCKET + 1801) == BUCKET + 3600
    # a station on a half-hour clock: 12:20 there speaks for its own 12:30 (not 13:00)
    half = 1800.0
    assert hour_bucket(BUCKET + 1200, offset=half) == BUCKET + 1800


def test_the_first_count_adds_its_row_and_a_later_one_replaces_it() -> None:
    ledger = StationLedger("e")
    first = ledger.add([count("S1", 400, minutes_before_noon=20)])
    assert list(first.deltas) == [("e", "KZ-10", BUCKET)]
    assert first.deltas[("e", "KZ-10", BUCKET)].tolist() == row(1000, 400)
    # 11:55 speaks for the same hour: the station's contribution moves from 400 to 450, n stays 1
    later = ledger.add([count("S1", 450, minutes_before_noon=5, report="r2")])
    assert later.deltas[("e", "KZ-10", BUCKET)].tolist() == [0.0, 0.0, 50.0, 0.0, 50_000.0, 450**2 - 400**2]
    sums = RegionSums()
    sums.apply(first.deltas)
    sums.apply(later.deltas)
    assert sums.at("e", BUCKET, ["KZ-10"]).tolist() == [row(1000, 450)]
    assert ledger.latest[("S1", BUCKET, "tally")].voted == 450


def test_a_correction_replaces_rather_than_adds() -> None:
    """The observer sends the same instant again with another figure (a typo fixed): it replaces."""
    ledger, sums = StationLedger("e"), RegionSums()
    sums.apply(ledger.add([count("S1", 540)]).deltas)
    fixed = ledger.add([count("S1", 450, report="r2", received_after=3)])
    assert fixed.ignored == 0
    assert fixed.deltas[("e", "KZ-10", BUCKET)].tolist() == [0.0, 0.0, -90.0, 0.0, -90_000.0, 450**2 - 540**2]
    sums.apply(fixed.deltas)
    assert sums.at("e", BUCKET, ["KZ-10"]).tolist() == [row(1000, 450)]


def test_a_resend_of_the_same_figures_and_an_older_count_are_ignored() -> None:
    ledger = StationLedger("e")
    ledger.add([count("S1", 450, minutes_before_noon=5)])
    # the same figures under another report id, received later (a retry, a redelivery): no delta
    again = ledger.add([count("S1", 450, minutes_before_noon=5, report="r9", received_after=20)])
    assert (again.deltas, again.comparisons, again.ignored) == ({}, [], 1)
    # a count taken before the one held (it arrived late) does not replace it
    older = ledger.add([count("S1", 400, minutes_before_noon=15, report="r3")])
    assert (older.deltas, older.ignored) == ({}, 1)
    assert ledger.latest[("S1", BUCKET, "tally")].voted == 450
    # too early for any hour (11:25: 35 minutes of voting to go)
    early = ledger.add([count("S2", 300, minutes_before_noon=35)])
    assert (early.deltas, early.ignored) == ({}, 1)
    assert ("S2", BUCKET, "tally") not in ledger.latest


def test_per_region_sums_of_several_stations() -> None:
    ledger, sums = StationLedger("e"), RegionSums()
    update = ledger.add(
        [
            count("S1", 400),
            count("S2", 300, registered=600),
            count("S3", 700, registered=2000, region="KZ-11"),
            count("S4", 800, minutes_before_noon=-50),  # 12:50: the 13:00 hour
        ]
    )
    assert sums.apply(update.deltas) == {("e", "KZ-10", BUCKET), ("e", "KZ-11", BUCKET), ("e", "KZ-10", BUCKET + 3600)}
    both = np.array(row(1000, 400)) + np.array(row(600, 300))
    assert both.tolist() == [2.0, 1600.0, 700.0, 1_360_000.0, 580_000.0, 250_000.0]
    at_noon = sums.at("e", BUCKET, ["KZ-10", "KZ-11", "KZ-15"])
    assert at_noon.shape == (3, 6)
    assert at_noon.tolist() == [both.tolist(), row(2000, 700), [0.0] * 6]  # KZ-15: nothing observed
    assert sums.at("e", BUCKET + 3600, ["KZ-10"]).tolist() == [row(1000, 800)]
    assert sums.at("other", BUCKET, ["KZ-10"]).tolist() == [[0.0] * 6]
    assert sums.at("e", BUCKET, []).shape == (0, 6)


def test_commission_figures_add_nothing_to_the_sums_but_are_compared_with_the_tally() -> None:
    ledger = StationLedger("e")
    protocol = ledger.add([count("S1", 520, source="commission")])
    assert (protocol.deltas, protocol.comparisons) == ({}, [])  # no tally for that hour yet
    tally = ledger.add([count("S1", 450, report="r2")])
    assert list(tally.deltas) == [("e", "KZ-10", BUCKET)]
    assert tally.comparisons == [StationComparison("e", "S1", "KZ-10", BUCKET, 1000, 450, 520)]


def test_a_station_row_counts_as_the_observer_count_it_came_from() -> None:
    """The station-counts topic carries rows, a day file counts: both give the ledger the same."""
    counts = [
        count("S1", 400),
        count("S2", 300, minutes_before_noon=-50, region="KZ-11"),
        count("S1", 520, source="commission"),
    ]
    from_counts = StationLedger("e").add(counts)
    from_rows = StationLedger("e").add([StationRow.of(c) for c in counts])
    assert {k: v.tolist() for k, v in from_rows.deltas.items()} == {
        k: v.tolist() for k, v in from_counts.deltas.items()
    }
    assert (
        from_rows.comparisons
        == from_counts.comparisons
        == [StationComparison("e", "S1", "KZ-10", BUCKET, 1000, 400, 520)]
    )
    assert from_rows.regions == from_counts.regions == {"KZ-10", "KZ-11"}


def test_the_regions_counts_came_from_but_not_those_too_early_for_any_hour() -> None:
    ledger = StationLedger("e")
    assert ledger.add([count("S1", 400), count("S2", 300, minutes_before_noon=35, region="KZ-11")]).regions == {"KZ-10"}
    assert ledger.add([count("S1", 400)]).regions == {"KZ-10"}  # a resend still says the region reported


def test_a_station_whose_region_code_changes_moves_its_contribution() -> None:
    """A later count places the station in another region (the first was resolved wrongly): the first
    region loses it, the second gains it; the station is counted once."""
    ledger, sums = StationLedger("e"), RegionSums()
    sums.apply(ledger.add([count("S1", 400, minutes_before_noon=20)]).deltas)
    moved = ledger.add([count("S1", 400, minutes_before_noon=5, region="KZ-11")])
    assert {k: v.tolist() for k, v in moved.deltas.items()} == {
        ("e", "KZ-10", BUCKET): [-x for x in row(1000, 400)],
        ("e", "KZ-11", BUCKET): row(1000, 400),
    }
    sums.apply(moved.deltas)
    assert sums.at("e", BUCKET, ["KZ-10", "KZ-11"]).tolist() == [[0.0] * 6, row(1000, 400)]


def test_two_counts_with_the_same_times_keep_the_same_one_whichever_came_last() -> None:
    """Two different counts of a station's hour, observed and received at the same instants: which one
    the ledger keeps must not depend on their order, or a redelivery would flip it (and the sums)."""
    a, b = count("S1", 400), count("S1", 410, report="r2")
    assert (a.observed_at, a.received_at) == (b.observed_at, b.received_at)
    kept = []
    for order in ([a, b], [b, a], [a, b, a], [b, a, b]):
        ledger = StationLedger("e")
        for c in order:  # one at a time, as separate batches
            ledger.add([c])
        kept.append(ledger.latest[("S1", BUCKET, "tally")].voted)
        assert ledger.add([a, b]).deltas == {} and ledger.add([b]).deltas == {}  # redelivered: nothing moves
    assert len(set(kept)) == 1


def test_a_protocol_above_the_tally_is_flagged_once_until_it_resolves() -> None:
    """Allowed: max(10 voters, 2 % of 1,000) = 20. 520 over 450 is 70 above: 7 % of the list, critical (>= 5 %)."""
    checker = StationChecker({"KZ-10": "Abai Region"})
    above = StationComparison("e", "S1", "KZ-10", BUCKET, 1000, 450, 520)
    [flag] = checker.check([above], TZ)
    assert (flag.region, flag.station, flag.detector, flag.severity, flag.value, flag.expected) == (
        "Abai Region",
        "S1",
        "protocol_above_tally",
        "critical",
        520.0,
        450.0,
    )
    assert flag.as_of == "2022-11-20T12:00:00+06:00"
    assert flag.evidence == {"excess_voters": 70, "registered": 1000}
    assert flag.message == (
        "station S1: the commission reports 520 voters by 12:00, the observer counted 450 "
        "(+70, 7.0% of 1000 on the list)"
    )
    assert checker.check([above], TZ) == []  # the same anomaly again: held back
    assert checker.check([StationComparison("e", "S1", "KZ-10", BUCKET, 1000, 450, 470)], TZ) == []  # 20: allowed
    [again] = checker.check([above], TZ)  # it had resolved: news again
    assert again.severity == "critical"


@pytest.mark.parametrize(("commission", "severity"), [(471, "warning"), (499, "warning"), (500, "critical")])
def test_protocol_severity_at_the_bounds(commission: int, severity: str) -> None:
    """21 above is past the 20 allowed (warning); 50 above is 5 % of the list (critical)."""
    [flag] = StationChecker().check([StationComparison("e", "S1", "KZ-10", BUCKET, 1000, 450, commission)], TZ)
    assert flag.severity == severity and flag.region == "KZ-10"


def test_a_held_count_costs_columns_not_objects() -> None:
    """An India-sized day holds 11 million counts of one election on one worker: as objects (a key tuple,
    a row, its floats and strings) that was ~500 bytes a count, 5.9 GB; in columns it must stay small."""
    import tracemalloc

    stations = [f"{region:02d}-{n:05d}" for region in range(20) for n in range(250)]
    hours = [NOON + timedelta(hours=h) for h in range(3)]
    ledger = StationLedger("e")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for hour in hours:
            rows = [
                StationRow(s, f"KZ-{s[:2]}", "tally", (hour - timedelta(minutes=10)).timestamp(), 21600.0,
                           (hour - timedelta(minutes=9)).timestamp(), 1000, 400 + i % 300)
                for i, s in enumerate(stations)
            ]  # fmt: skip
            ledger.add(rows)
            del rows
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ledger.latest) == len(stations) * len(hours)
    assert held / len(ledger.latest) < 150, f"{held / len(ledger.latest):.0f} bytes a count"
