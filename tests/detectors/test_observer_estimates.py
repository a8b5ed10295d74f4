"""The observers' side of the detectors: estimator, interval, ledger, station comparisons."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.observer_estimates import ratio_estimate, station_stats, student_threshold, sum_by_group
from detectors.rules.observers import protocol_above_tally
from detectors.station_ledger import RegionSums, StationChecker, StationLedger, hour_bucket
from detectors.tracker import Release, TurnoutTracker
from turnout_watch.core.records import ObserverCount, Source

TZ = timezone(timedelta(hours=6))
NOON = datetime(2022, 11, 20, 12, tzinfo=TZ).timestamp()


def test_ratio_estimate_known_answer() -> None:
    stats = station_stats(np.array([1000.0, 2000.0, 1000.0]), np.array([500.0, 900.0, 300.0]))
    est = ratio_estimate(stats.sum(axis=0), min_spread_points=0.0)
    assert est.estimate[0] == pytest.approx(100 * 1700 / 4000)
    r = 1700 / 4000
    residuals = np.array([500 - r * 1000, 900 - r * 2000, 300 - r * 1000])
    expected_se = 100 * np.sqrt((residuals**2).sum() / 2 / (3 * (4000 / 3) ** 2))
    assert est.se[0] == pytest.approx(expected_se)


def test_sums_by_region_add_up() -> None:
    stats = station_stats(np.array([100.0, 200.0, 300.0]), np.array([10.0, 20.0, 30.0]))
    grouped = sum_by_group(np.array([0, 1, 0]), stats, 2)
    assert grouped[:, 0].tolist() == [2.0, 1.0] and grouped[0, 2] == 40.0


@settings(deadline=None, max_examples=20)
@given(st.integers(min_value=0, max_value=10_000))
def test_interval_covers_the_truth_about_95_percent(seed: int) -> None:
    """Sample 30 of 1,000 stations 400 times: the 95 % interval holds the true turnout ~95 % of the time."""
    rng = np.random.default_rng(seed)
    size = np.clip(rng.lognormal(np.log(1200), 0.4, 1000), 100, 3500)
    turnout = np.clip(rng.normal(0.6, 0.08, 1000), 0, 1)
    truth = 100 * (size * turnout).sum() / size.sum()
    picks = np.array([rng.choice(1000, 30, replace=False) for _ in range(400)])
    stats = np.array([station_stats(size[p], size[p] * turnout[p]).sum(axis=0) for p in picks])
    low, high = ratio_estimate(stats).interval()
    coverage = np.mean((low <= truth) & (truth <= high))
    assert 0.88 <= coverage <= 0.995


def test_student_threshold_widens_for_few_stations() -> None:
    t = student_threshold(3.0, np.array([5.0, 10.0, 1000.0]))
    assert t[0] > t[1] > t[2] > 3.0 and t[2] == pytest.approx(3.0, abs=0.01)


def test_protocol_above_tally_allows_counting_error() -> None:
    hit, excess = protocol_above_tally(
        np.array([510, 530, 1000, 480]), np.array([500, 500, 940, 500]), np.array([1000, 1000, 2500, 1000])
    )
    assert hit.tolist() == [False, True, True, False]  # 10 allowed; 30 > 20 (2 %); 60 > 50; below is fine
    assert excess.tolist() == [10, 30, 60, -20]


def count(station: str, minutes_before_noon: float, voted: int, source: Source = "tally") -> ObserverCount:
    observed = datetime.fromtimestamp(NOON - 60 * minutes_before_noon, TZ)
    return ObserverCount("e", station, "Turkistan Region", "KZ-61", observed, observed, 1000, voted, source)


def test_hour_buckets() -> None:
    assert hour_bucket(NOON) == NOON
    assert hour_bucket(NOON - 60 * 29) == NOON
    assert hour_bucket(NOON - 60 * 45) is None  # 45 minutes of voting missing: no release to compare with


def test_ledger_replaces_a_station_count_never_doubles_it() -> None:
    ledger, sums = StationLedger("e"), RegionSums()
    sums.apply(ledger.add([count("s1", 10, 400), count("s2", 5, 500)]).deltas)
    assert sums.at("e", NOON, ["KZ-61"])[0][:3].tolist() == [2.0, 2000.0, 900.0]
    update = ledger.add([count("s1", 2, 420), count("s1", 10, 400), count("s2", 20, 480)])
    assert update.ignored == 2  # the same count again; an older count than the one held
    sums.apply(update.deltas)
    assert sums.at("e", NOON, ["KZ-61"])[0][:3].tolist() == [2.0, 2000.0, 920.0]


def test_station_checker_flags_once_and_names_the_station() -> None:
    ledger, checker = StationLedger("e"), StationChecker({"KZ-61": "Turkistan Region"})
    update = ledger.add([count("s1", 5, 500), count("s1", 5, 560, "commission")])
    [flag] = checker.check(update.comparisons, TZ)
    assert (flag.station, flag.detector, flag.severity, flag.value, flag.expected) == (
        "s1",
        "protocol_above_tally",
        "critical",
        560.0,
        500.0,
    )
    assert flag.to_dict()["station"] == "s1" and "Turkistan" in flag.region
    again = ledger.add([count("s1", 1, 560, "commission")])
    assert checker.check(again.comparisons, TZ) == []  # the same anomaly persists: not re-alerted


def test_tracker_compares_official_with_observed_whichever_arrives_first() -> None:
    counts = [count(f"s{i}", 5, 500 + (i % 5) * 10) for i in range(20)]
    release = Release("e", datetime.fromtimestamp(NOON, TZ), datetime.fromtimestamp(NOON + 300, TZ), {"KZ-61": 60.0})
    first = TurnoutTracker("e")
    first.process(release)
    counted = first.add_counts(counts)
    flags = counted.flags
    assert counted.counted_regions == {"KZ-61"}
    [estimate] = counted.estimates
    assert (estimate.region_code, estimate.official, estimate.stations) == ("KZ-61", 60.0, 20)
    second = TurnoutTracker("e")
    early = second.add_counts(counts)
    assert (early.flags, early.estimates, early.counted_regions) == ([], [], {"KZ-61"})  # no release to compare
    assert [(f.region_code, f.detector, f.severity) for f in flags] == [
        ("KZ-61", "official_above_observed", "critical")
    ]
    judged = second.process(release)
    assert [f.to_dict() for f in judged.flags] == [f.to_dict() for f in flags]
    assert judged.estimates == [estimate]
    assert flags[0].expected == pytest.approx(52.0)
    # the counts again (a redelivered batch): nothing new, not a second set of stations
    again = first.add_counts(counts)
    assert (again.flags, again.estimates) == ([], [])


def test_tracker_checks_protocols_against_tallies_in_its_zone() -> None:
    """Station flags' "as of" is stated in the tracker's zone (the watch room's), once per anomaly."""
    tracker = TurnoutTracker("e", {"KZ-61": "Turkistan Region"}, zone=timezone(timedelta(hours=5)))
    [flag] = tracker.add_counts([count("s1", 5, 500), count("s1", 5, 560, "commission")]).flags
    assert (flag.station, flag.detector, flag.as_of) == ("s1", "protocol_above_tally", "2022-11-20T11:00:00+05:00")
    assert tracker.add_counts([count("s1", 1, 560, "commission")]).flags == []  # persists: not re-alerted


def test_hour_buckets_are_the_station_s_own_full_hours_as_absolute_time() -> None:
    # whole-hour zones (UTC+5 or +6): the same instant either way
    assert hour_bucket(NOON - 60 * 10, offset=5 * 3600) == hour_bucket(NOON - 60 * 10, offset=6 * 3600) == NOON
    # a half-hour zone (UTC+5:30): 05:20 UTC is 10:50 local; its full hour, 11:00 local, is 05:30 UTC
    assert hour_bucket(NOON - 60 * 40, offset=5.5 * 3600) == NOON - 60 * 30
    assert hour_bucket(NOON - 60 * 10, offset=5.5 * 3600) is None  # 11:20 local: 40 minutes short of 12:00
