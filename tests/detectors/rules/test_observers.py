"""Official figures against the observers' estimate, and commission figures against tallies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detectors.config import DetectorConfig
from detectors.observer_estimates import RatioEstimate, student_threshold
from detectors.rules.observers import (
    ObservedBatch,
    OfficialAboveObserved,
    ProtocolAboveTally,
    StationBatch,
    official_above_observed,
)
from detectors.station_ledger import StationComparison

TZ = timezone(timedelta(hours=6))
CFG = DetectorConfig()
NOON = datetime(2022, 11, 20, 12, tzinfo=TZ)


def observed(official: list[float], stations: list[int], se: float = 0.5) -> ObservedBatch:
    """Observers estimate 50.0 % in every region, with standard error `se` points."""
    n = len(official)
    stats = np.zeros((n, 6))
    stats[:, 0] = stations
    estimate = RatioEstimate(np.full(n, 50.0), np.full(n, se), stats[:, 0])
    codes = [f"KZ-{10 + k}" for k in range(n)]
    counted = stats[:, 0] >= CFG.observed_min_stations
    return ObservedBatch(
        "e", NOON.isoformat(), {"KZ-10": "Akmola"}, codes, np.array(official), stats, estimate, counted
    )


def test_official_above_observed_gap_and_z() -> None:
    gap, z = official_above_observed(
        np.array([53.0, 48.0]), RatioEstimate(np.array([50.0, 50.0]), np.array([1.0, 2.0]), np.array([30.0, 30.0]))
    )
    assert gap.tolist() == [3.0, -2.0] and z.tolist() == [3.0, -1.0]


def test_official_above_observed_flags_gap_and_z_together() -> None:
    ob = observed([53.0, 51.0, 60.0, 56.0], [30, 30, 5, 30])
    flags = OfficialAboveObserved().flags(ob, CFG)
    # KZ-11: 1 point is below the 2-point minimum; KZ-12: 5 stations are too few to judge
    assert [(f.region_code, f.severity, f.value, f.expected) for f in flags] == [
        ("KZ-10", "warning", 53.0, 50.0),  # 6 SEs, but 3 points: under the 5 points of critical
        ("KZ-13", "critical", 56.0, 50.0),  # 6 points, 12 SEs
    ]
    assert flags[0].message == (
        "Akmola: official 53.00% is 3.0 points above what observers counted at 30 stations (50.0%, 95% CI 49.0-51.0)"
    )
    assert flags[0].evidence == {"stations": 30, "se_points": 0.5, "ci95": [49.02, 50.98], "gap_points": 3.0, "z": 6.0}
    assert flags[0].as_of == "2022-11-20T12:00:00+06:00" and flags[0].detector == "official_above_observed"
    # 5 points but 4.2 SEs: critical needs both the points and 4.0 SEs widened to the Student-t of 30 stations (4.66)
    assert [f.severity for f in OfficialAboveObserved().flags(observed([55.0], [30], se=1.2), CFG)] == ["warning"]
    assert [f.severity for f in OfficialAboveObserved().flags(observed([55.0], [30], se=1.0), CFG)] == ["critical"]


def test_few_stations_widen_the_threshold_beyond_the_normal_one() -> None:
    """4 SEs clears the normal 3.5 but not the Student-t one of 10 stations (5.2)."""
    assert student_threshold(3.5, np.array([9.0]))[0] == pytest.approx(5.216, abs=0.01)
    assert OfficialAboveObserved().flags(observed([54.0], [10], se=1.0), CFG) == []
    assert [f.severity for f in OfficialAboveObserved().flags(observed([54.0], [100], se=1.0), CFG)] == ["warning"]


def test_protocol_above_tally_flags_by_share_of_the_list() -> None:
    pairs = [
        StationComparison("e", "s1", "KZ-75", NOON.timestamp(), 1000, 500, 515),  # +15: within 2 % of the list (20)
        StationComparison("e", "s2", "KZ-75", NOON.timestamp(), 1000, 500, 540),  # +40: 4 % of the list
        StationComparison("e", "s3", "KZ-75", NOON.timestamp(), 1000, 500, 560),  # +60: 6 %, over the critical 5 %
    ]
    flags = ProtocolAboveTally().flags(StationBatch(pairs, {"KZ-75": "Almaty"}, TZ), CFG)
    assert [(f.station, f.region, f.severity, f.value, f.expected) for f in flags] == [
        ("s2", "Almaty", "warning", 540.0, 500.0),
        ("s3", "Almaty", "critical", 560.0, 500.0),
    ]
    assert flags[0].message == (
        "station s2: the commission reports 540 voters by 12:00, "
        "the observer counted 500 (+40, 4.0% of 1000 on the list)"
    )
    assert flags[0].evidence == {"excess_voters": 40, "registered": 1000}
    assert flags[0].as_of == "2022-11-20T12:00:00+06:00" and flags[0].detector == "protocol_above_tally"
    assert ProtocolAboveTally().flags(StationBatch([], {}), CFG) == []
